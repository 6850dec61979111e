"""Readers of users' files against crafted sizes: headers that declare more than the file or a limit
holds, decompression bombs, oversized images, and symbolic-link loops in image folders."""

import gzip
import os
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from lamina.datasets import CIFAR10, MNIST, DatasetFileError, ImageFolder, files, folder, read_idx, read_image

from .test_files import make_cifar, make_mnist


def idx_header(shape, type_code=0x08):
    return struct.pack(">BBBB", 0, 0, type_code, len(shape)) + struct.pack(f">{len(shape)}i", *shape)


def test_a_size_over_the_limit_is_refused_before_the_data_is_read(tmp_path, monkeypatch):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    # a valid header, then bytes that are not deflate data: reading any of them would fail differently
    good = gzip.compress(idx_header((20, 28, 28)) + bytes(20 * 784))
    path.write_bytes(good[:40] + b"\xff" * 40 + good[80:])
    monkeypatch.setattr(files, "MAX_DATA_BYTES", 10_000)
    with pytest.raises(DatasetFileError, match=r"15,680 bytes, more than lamina.datasets.files.MAX_DATA_BYTES"
                                               r" = 10,000") as err:
        read_idx(str(path), "MNIST")
    assert str(path) in str(err.value)


def test_a_small_gzip_declaring_a_huge_array_is_refused(tmp_path):
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(idx_header((1_000_000, 28, 28)) + bytes(100)))  # 784 MB declared, ~130 B file
    with pytest.raises(DatasetFileError, match="more than a gzip file of .* bytes can hold"):
        read_idx(str(path), "MNIST")
    path.write_bytes(gzip.compress(idx_header((2**31 - 1, 28, 28))))
    with pytest.raises(DatasetFileError, match="more than lamina.datasets.files.MAX_DATA_BYTES"):
        read_idx(str(path), "MNIST")
    raw = tmp_path / "bomb.idx"
    raw.write_bytes(idx_header((1_000_000, 28, 28)) + bytes(100))
    with pytest.raises(DatasetFileError, match="truncated: header shape .* needs 784000016 bytes, the file has 116"):
        read_idx(str(raw), "MNIST")


def test_a_gzip_holding_more_or_less_than_its_header_declares(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_header((3, 28, 28)) + bytes(3 * 784 + 1)))
    with pytest.raises(DatasetFileError, match="longer than its header says"):
        read_idx(str(path), "MNIST")
    path.write_bytes(gzip.compress(idx_header((3, 28, 28)) + bytes(3 * 784 - 1)))
    with pytest.raises(DatasetFileError, match="truncated: header shape .* the stream ended after 2351"):
        read_idx(str(path), "MNIST")


def test_mnist_images_must_be_28_by_28(tmp_path):
    folder_, _, _ = make_mnist(str(tmp_path))
    path = os.path.join(folder_, "train-images-idx3-ubyte")
    with open(path, "wb") as f:
        f.write(idx_header((5, 20, 20)) + bytes(5 * 400))
    with pytest.raises(DatasetFileError, match=r"declares shape \(5, 20, 20\), expected \(N, 28, 28\)"):
        MNIST(str(tmp_path))


def test_mnist_gzip_is_read_into_place(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 4, size=(12_000, 28, 28), dtype=np.uint8)  # 9.4 MB
    folder_ = tmp_path / "MNIST" / "raw"
    os.makedirs(folder_)
    (folder_ / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(images.shape) + images.tobytes(),
                                                                       compresslevel=1))
    (folder_ / "train-labels-idx1-ubyte").write_bytes(idx_header((12_000,)) + bytes(12_000))
    tracemalloc.start()
    try:
        ds = MNIST(str(tmp_path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(ds.data, images)
    assert peak < 1.5 * images.nbytes, f"peak {peak / images.nbytes:.2f}x the images' bytes"


def test_cifar_files_larger_than_the_data_set_can_be(tmp_path, monkeypatch):
    folder_, _ = make_cifar(str(tmp_path), n=4)
    monkeypatch.setattr(CIFAR10, "max_records", 3)
    with pytest.raises(DatasetFileError, match=r"data_batch_1.bin holds 12,292 bytes, more than what a CIFAR10 "
                                               r"file can hold \(3 records\)"):
        CIFAR10(str(tmp_path))
    path = os.path.join(folder_, "data_batch_1.bin")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(gzip.compress(data))
    with pytest.raises(DatasetFileError, match="data_batch_1.bin expands to more than 9,219 bytes"):
        CIFAR10(str(tmp_path))
    monkeypatch.setattr(CIFAR10, "max_records", 10_000)
    assert len(CIFAR10(str(tmp_path))) == 20  # a gzip CIFAR file within the limit reads as before


# --- images ----------------------------------------------------------------------------------

def png_declaring(tmp_path, width, height):
    """A tiny PNG whose header (IHDR, with a valid CRC) declares ``width`` × ``height`` pixels."""
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / f"huge_{width}x{height}.png"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    i = data.index(b"IHDR")
    data[i + 4:i + 12] = struct.pack(">II", width, height)
    data[i + 17:i + 21] = struct.pack(">I", zlib.crc32(bytes(data[i:i + 17])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [20_000, 10_000])  # 400 MP: over Pillow's own limit; 100 MP: over lamina's
def test_an_image_declaring_too_many_pixels_is_refused_naming_the_file(tmp_path, side):
    path = png_declaring(tmp_path, side, side)
    os.makedirs(tmp_path / "root" / "big")
    os.replace(path, tmp_path / "root" / "big" / path.name)
    ds = ImageFolder(str(tmp_path / "root"))
    with pytest.raises(DatasetFileError, match=f"refused image .*{path.name}: .*pixels"):
        ds[0]
    with pytest.raises(ValueError, match=f"lamina predict: refused image .*{path.name}.*pixels"):
        read_image(str(tmp_path / "root" / "big" / path.name), 1, (8, 8), "lamina predict")


def test_the_pixel_limit_is_a_documented_constant(tmp_path, monkeypatch):
    Image = pytest.importorskip("PIL.Image")
    os.makedirs(tmp_path / "a")
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(tmp_path / "a" / "x.png")
    ds = ImageFolder(str(tmp_path))
    assert ds[0][0].shape == (3, 5, 7)
    monkeypatch.setattr(folder, "MAX_IMAGE_PIXELS", 34)
    with pytest.raises(DatasetFileError, match=r"x.png: it is 7 × 5 = 35 pixels, more than "
                                               r"lamina.datasets.folder.MAX_IMAGE_PIXELS = 34"):
        ds[0]


def test_npy_images_are_checked_from_their_header(tmp_path):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)})
    crafted = tmp_path / "crafted.npy"
    crafted.write_bytes(buf.getvalue() + bytes(64))
    with pytest.raises(ValueError, match=r"op: .*crafted.npy.*more than 4 × lamina.datasets.folder.MAX_IMAGE_PIXELS"):
        read_image(str(crafted), 1, (8, 8), "op")
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((8, 8), np.float32))
    short.write_bytes(short.read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"short.npy.*256 bytes\), but 252 bytes follow"):
        read_image(str(short), 1, (8, 8), "op")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([None] * 64).reshape(8, 8), allow_pickle=True)
    with pytest.raises(ValueError, match="obj.npy.*dtype object"):
        read_image(str(obj), 1, (8, 8), "op")
    np.save(tmp_path / "ok.npy", np.ones((8, 8)))
    assert read_image(str(tmp_path / "ok.npy"), 1, (8, 8)).shape == (1, 8, 8)


# --- symbolic links in image folders ------------------------------------------------------------

def make_tree(tmp_path):
    for rel in ["root/cat/a/1.png", "root/cat/a/2.png", "root/cat/3.png", "root/dog/4.png", "extra/5.png"]:
        os.makedirs(os.path.dirname(tmp_path / rel), exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    return tmp_path / "root"


def listed(root):
    ds = ImageFolder(str(root), loader=lambda p: p)
    return [(os.path.relpath(p, root), t) for p, t in ds.samples]


def test_a_symlink_loop_lists_each_image_once(tmp_path):
    root = make_tree(tmp_path)
    before = listed(root)
    os.symlink("..", root / "cat" / "a" / "up")  # cat/a/up → cat: a loop
    os.symlink(".", root / "dog" / "self")
    os.symlink("..", root / "dog" / "top")  # dog/top → the root, which holds dog
    assert listed(root) == before == [("cat/3.png", 0), ("cat/a/1.png", 0), ("cat/a/2.png", 0), ("dog/4.png", 1)]


def test_links_to_sibling_and_outside_folders(tmp_path):
    root = make_tree(tmp_path)
    os.symlink("a", root / "cat" / "b")  # a sibling already walked: nothing twice
    os.symlink(os.path.abspath(tmp_path / "extra"), root / "dog" / "more")  # a folder outside: followed
    os.symlink("../dog", root / "cat" / "dogs")  # another class's folder: its images stay in that class
    assert listed(root) == [("cat/3.png", 0), ("cat/a/1.png", 0), ("cat/a/2.png", 0), ("dog/4.png", 1),
                            ("dog/more/5.png", 1)]
