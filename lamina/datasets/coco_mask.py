"""COCO's mask encodings in plain NumPy: run-length encoding (RLE) and polygons, as ``pycocotools.mask``.

A COCO RLE lists the lengths of alternating runs of 0s and 1s (starting with 0s) over the mask
read in column-major (Fortran) order: pixel ``(y, x)`` is position ``x * h + y``. The counts come
either as a list of ints ("uncompressed") or as a string ("compressed"): each count, from the
fourth on as the difference from the count two before it, in a LEB128-like code of 6 bits per
character (ASCII 48..111; 5 value bits and a continuation bit, sign-extended).

Polygons are rasterized as ``pycocotools``' ``rleFrPoly`` does it, step by step: the vertices
are scaled by 5 and rounded, the boundary is traced densely between them, and the points where
it crosses a pixel-centre column decide, column by column, where the runs toggle. The results
equal ``pycocotools.mask.decode(frPyObjects(...))`` bit for bit (the tests check random cases).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["rle_from_string", "rle_to_string", "rle_encode", "rle_decode", "polygon_to_rle", "bbox_to_rle",
           "fr_py_objects", "decode", "RLEError"]

_SCALE = 5.0  # pycocotools upsamples polygons by 5 before tracing their boundary


class RLEError(ValueError):
    """A mask encoding that cannot be decoded (the message says what was wrong)."""


def _uint32(x: int) -> int:
    return x & 0xFFFFFFFF  # C's (uint) cast


def rle_from_string(s: str | bytes) -> list[int]:
    """The counts of a compressed COCO RLE string (``rleFrString``)."""
    data = s.encode("ascii", "replace") if isinstance(s, str) else bytes(s)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise RLEError("the compressed counts end inside a number (last character has its continuation bit)")
            c = data[p] - 48
            if not 0 <= c < 64:
                raise RLEError(f"the compressed counts hold {chr(data[p])!r} at position {p}, outside the "
                               f"characters '0'..'o' of COCO's RLE code")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)  # sign extension
        if len(counts) > 2:
            x += counts[-2]
        counts.append(_uint32(x))
    return counts


def rle_to_string(counts: Sequence[int]) -> str:
    """The compressed string of RLE ``counts`` (``rleToString``)."""
    out = []
    for i, cnt in enumerate(counts):
        x = int(cnt) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_encode(mask: Any) -> list[int]:
    """The uncompressed RLE counts of a 2-D 0/1 mask (column-major, starting with a run of 0s)."""
    flat = np.asarray(mask).astype(bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return counts


def rle_decode(counts: Sequence[int], h: int, w: int) -> Any:
    """A uint8 mask ``(h, w)`` from RLE counts; raises :class:`RLEError` unless they sum to ``h * w``."""
    c = np.asarray(counts, dtype=np.int64)
    if c.ndim != 1 or (c < 0).any():
        raise RLEError("RLE counts must be a list of non-negative integers")
    total = int(c.sum())
    if total != h * w:
        raise RLEError(f"RLE counts sum to {total}, but a {h} x {w} mask has {h * w} pixels")
    values = (np.arange(len(c)) % 2).astype(np.uint8)
    return np.repeat(values, c).reshape(w, h).T.copy()


def _merge_zero_runs(a: list[int]) -> list[int]:
    """pycocotools' last step of ``rleFrPoly``: a zero gap cancels two toggles, merging the runs around it."""
    b = [a[0]]
    j = 1
    while j < len(a):
        if a[j] > 0:
            b.append(a[j])
            j += 1
        else:
            j += 1
            if j < len(a):
                b[-1] += a[j]
                j += 1
    return b


def polygon_to_rle(xy: Sequence[float], h: int, w: int) -> list[int]:
    """RLE counts of one polygon ``[x1, y1, x2, y2, ...]`` on an ``h`` x ``w`` grid (``rleFrPoly``)."""
    pts = np.asarray(xy, dtype=np.float64)
    k = len(pts) // 2
    # C's (int) cast truncates toward zero
    x = np.trunc(_SCALE * pts[0:2 * k:2] + 0.5).astype(np.int64)
    y = np.trunc(_SCALE * pts[1:2 * k:2] + 0.5).astype(np.int64)
    x, y = np.append(x, x[:1]), np.append(y, y[:1])
    us, vs = [], []
    for j in range(k):
        xs, xe, ys, ye = int(x[j]), int(x[j + 1]), int(y[j]), int(y[j + 1])
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            t = np.arange(dx + 1)
            t = dx - t if flip else t
            us.append(t + xs)
            # a repeated vertex (dx = dy = 0) gives 0/0 in C; its v is never used (its u equals its neighbours')
            s = (ye - ys) / dx if dx else 0.0
            vs.append(np.trunc(ys + s * t + 0.5).astype(np.int64))
        else:
            t = np.arange(dy + 1)
            t = dy - t if flip else t
            vs.append(t + ys)
            s = (xe - xs) / dy
            us.append(np.trunc(xs + s * t + 0.5).astype(np.int64))
    u = np.concatenate(us) if us else np.zeros(0, np.int64)
    v = np.concatenate(vs) if vs else np.zeros(0, np.int64)
    # the points where the boundary crosses a pixel-centre column, downsampled
    step = np.flatnonzero(u[1:] != u[:-1]) + 1
    uj, up, vj, vp = u[step], u[step - 1], v[step], v[step - 1]
    xd = np.where(uj < up, uj, uj - 1).astype(np.float64)
    xd = (xd + 0.5) / _SCALE - 0.5
    ok = (np.floor(xd) == xd) & (xd >= 0) & (xd <= w - 1)
    yd = np.minimum(vj, vp).astype(np.float64)
    yd = (yd + 0.5) / _SCALE - 0.5
    yd = np.ceil(np.clip(yd, 0, h))
    a = (xd[ok].astype(np.int64) * h + yd[ok].astype(np.int64)).tolist()
    a.append(h * w)
    a.sort()
    gaps = np.diff(np.asarray([0] + a)).tolist()
    return _merge_zero_runs(gaps)


def bbox_to_rle(bbox: Sequence[float], h: int, w: int) -> list[int]:
    """RLE counts of a box ``[x, y, width, height]`` (``rleFrBbox``: the box as a 4-vertex polygon)."""
    xs, ys, bw, bh = (float(v) for v in bbox)
    xe, ye = xs + bw, ys + bh
    return polygon_to_rle([xs, ys, xs, ye, xe, ye, xe, ys], h, w)


def _check_numbers(values: Any, what: str) -> list[float]:
    if not isinstance(values, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise RLEError(f"{what} must be a list of numbers, got {type(values).__name__}")
    if not all(math.isfinite(v) for v in values):
        raise RLEError(f"{what} holds a non-finite number")
    return [float(v) for v in values]


def fr_py_objects(segm: Any, h: int, w: int) -> dict[str, Any] | list[dict[str, Any]]:
    """A COCO ``segmentation`` as RLEs ``{"size": [h, w], "counts": [...]}``, as ``pycocotools.mask.frPyObjects``.

    A list of polygons gives a list of RLEs (one per polygon), an RLE dict one RLE dict.

    Follows pycocotools' dispatch: a list of lists is a list of polygons, a dict with ``counts``
    and ``size`` is one RLE (compressed when ``counts`` is a string, otherwise uncompressed).
    pycocotools fails (TypeError) when the first polygon has exactly 4 numbers, as it takes the
    list for boxes; that case, like an odd number of coordinates (pycocotools drops the last one)
    or fewer than 4, raises :class:`RLEError`. An empty list gives no RLE.
    """
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            raise RLEError(f"an RLE segmentation needs 'counts' and 'size', got keys {sorted(segm)}")
        size = segm["size"]
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)):
            raise RLEError(f"an RLE's 'size' must be [height, width] (non-negative integers), got {size!r}")
        counts = segm["counts"]
        if isinstance(counts, (str, bytes)):
            counts = rle_from_string(counts)
        elif not isinstance(counts, (list, tuple)) or not all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise RLEError("an uncompressed RLE's 'counts' must be a list of non-negative integers")
        return {"size": [int(size[0]), int(size[1])], "counts": [int(c) for c in counts]}
    if not isinstance(segm, list):
        raise RLEError(f"a segmentation must be a list of polygons or an RLE dict, got {type(segm).__name__}")
    if not segm:
        return []
    if not all(isinstance(p, (list, tuple)) for p in segm):
        raise RLEError("a polygon segmentation must be a list of lists [x1, y1, x2, y2, ...]")
    if len(segm[0]) == 4:
        # pycocotools dispatches such a list to its box reader, which refuses a list (TypeError)
        raise RLEError("polygon 0 has 4 coordinates (2 points): pycocotools reads such a segmentation as boxes "
                       "and refuses it; a polygon needs at least 3 points")
    out = []
    for i, p in enumerate(segm):
        xy = _check_numbers(p, f"polygon {i}")
        if len(xy) % 2 or len(xy) < 4:
            raise RLEError(f"polygon {i} must hold an even number (at least 4) of coordinates, got {len(xy)}")
        out.append({"size": [h, w], "counts": polygon_to_rle(xy, h, w)})
    return out


def decode(rles: dict[str, Any] | Sequence[dict[str, Any]]) -> Any:
    """uint8 masks from RLEs, as ``pycocotools.mask.decode``: ``(h, w)`` for one, ``(h, w, n)`` for a list."""
    if isinstance(rles, dict):
        return decode([rles])[:, :, 0]
    out = []
    for r in rles:
        h, w = r["size"]
        counts = r["counts"]
        if isinstance(counts, (str, bytes)):
            counts = rle_from_string(counts)
        out.append(rle_decode(counts, h, w))
    if not out:
        raise RLEError("decode: got no RLE")
    return np.stack(out, axis=-1)
