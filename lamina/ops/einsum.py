"""Einstein summation, ``einsum``, with torch's semantics on NumPy's ``einsum``.

The equation is first made explicit: ``...`` becomes concrete letters (right-aligned across the
operands), an implicit output becomes the ellipsis followed by the letters seen once in
alphabetical order, and a size-1 dim that meets a larger size of its letter is expanded (a
differentiable broadcast, whose gradient sums back). The primitive then sees an equation with
letters only. Its backward is one more einsum per input: the output gradient contracted with the
other operands. Where a letter repeats inside an input (``'ii->i'``) the gradient lies on the
diagonal, which the backward writes as a product with identity matrices; a letter that only one
input carries and the output lacks (summed away) gets a vector of ones — both constants, so the
backward is itself differentiable.
"""

from __future__ import annotations

import string
from typing import Any

from .. import backend
from ..autograd.function import Context, Function
from ..autograd.tensor import Tensor
from .common import check_tensor, const

__all__ = ["einsum"]

xp = backend.xp

_LETTERS = string.ascii_uppercase + string.ascii_lowercase  # torch's label order: A–Z, then a–z


class Einsum(Function):
    @staticmethod
    def forward(ctx: Context, *arrays: Any, inputs: tuple[str, ...], output: str) -> Any:
        ctx.save_for_backward(*arrays)
        ctx.inputs, ctx.output = inputs, output
        eq = ",".join(inputs) + "->" + output
        return xp.einsum(eq, *arrays, optimize=len(arrays) > 2)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> tuple[Tensor | None, ...]:
        ops = ctx.saved_tensors
        inputs, output = ctx.inputs, ctx.output
        sizes = {c: n for sub, op in zip(inputs, ops) for c, n in zip(sub, op.shape)}
        grads: list[Tensor | None] = []
        for k, need in enumerate(ctx.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            grads.append(_input_grad(k, gy, ops, inputs, output, sizes))
        return tuple(grads)


def _input_grad(k: int, gy: Tensor, ops: tuple[Tensor, ...], inputs: tuple[str, ...], output: str,
                sizes: dict[str, int]) -> Tensor:
    """``∂/∂ops[k]``: ``gy`` contracted with every other operand, onto the subscripts of input k."""
    sub = inputs[k]
    free = iter(c for c in _LETTERS if c not in sizes)
    operands, subs = [gy], [output]
    for j, op in enumerate(ops):
        if j != k:
            operands.append(op)
            subs.append(inputs[j])
    elsewhere = set("".join(subs))
    target, seen = [], set()
    for c in sub:
        if c in seen:  # a repeated letter: its own label, tied to the first by an identity matrix
            d = next(free)
            operands.append(const(xp.eye(sizes[c], dtype=gy.dtype)))
            subs.append(c + d)
            target.append(d)
            continue
        seen.add(c)
        target.append(c)
        if c not in elsewhere:  # summed away in this input alone: the gradient is constant along it
            operands.append(const(xp.ones(sizes[c], dtype=gy.dtype)))
            subs.append(c)
    return Einsum.apply(*operands, inputs=tuple(subs), output="".join(target))


def _sublist_equation(args: tuple[Any, ...]) -> tuple[str, list[Any]]:
    """``einsum(op1, [0, 1], op2, [1, 2], [0, 2])`` as an equation string and its operands."""

    def letters(sublist: Any) -> str:
        out = []
        for s in sublist:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 52:
                out.append(_LETTERS[s])
            else:
                raise ValueError(f"einsum(): expected subscript to be within the range [0, 52), got {s!r}")
        return "".join(out)

    body, out = (args[:-1], args[-1]) if len(args) % 2 else (args, None)
    operands, subs = list(body[0::2]), [letters(s) for s in body[1::2]]
    eq = ",".join(subs)
    return (eq if out is None else eq + "->" + letters(out)), operands


def einsum(equation: Any, *operands: Any) -> Tensor:
    """Sum of products over the indices of an Einstein-notation ``equation``, as ``torch.einsum``.

    Args:
        equation: subscripts such as ``'ij,jk->ik'``: letters ``a–z``/``A–Z``, ``...`` for broadcast
            dims, an optional ``->`` output (without it: the letters seen once, sorted, after the
            ellipsis dims). A letter repeated in one operand takes its diagonal (``'ii->i'``);
            a letter missing from the output is summed. Also torch's sublist form
            ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.
        *operands: tensors of one dtype (or one list of them).

    Returns:
        The contraction; dims of a letter broadcast where one operand has size 1.

    Example:
        >>> import lamina
        >>> a = lamina.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> lamina.einsum('ii->', a).item(), lamina.einsum('ij->j', a).tolist()
        (5.0, [4.0, 6.0])
    """
    if not isinstance(equation, str):
        equation, operands = _sublist_equation((equation,) + operands)
    elif len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for i, op in enumerate(operands):
        check_tensor(op, "einsum", f"operand {i}")
    if not operands:
        raise ValueError("einsum(): must provide at least one operand")
    if len({op.dtype for op in operands}) > 1:
        raise RuntimeError(f"einsum(): expected all operands to have one dtype, got "
                           f"{', '.join(str(op.dtype) for op in operands)}")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) < len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    if len(terms) > len(operands):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    for ch in eq.replace("...", "").replace("->", "").replace(",", ""):
        if ch not in _LETTERS:
            raise RuntimeError(f"einsum(): invalid subscript given at index of equation: {ch!r} "
                               f"(expected letters a-z, A-Z, '...', ',' and '->')")
    used = set(eq)
    spare = [c for c in _LETTERS if c not in used]
    ell_dims = []
    for i, (t, op) in enumerate(zip(terms, operands)):
        n_named = len(t.replace("...", ""))
        if "..." in t:
            if t.count("...") > 1:
                raise RuntimeError(f"einsum(): found more than one ellipsis in the subscripts of operand {i}")
            if op.ndim < n_named:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({n_named}) is more than the "
                                   f"number of dimensions ({op.ndim}) for operand {i}")
            ell_dims.append(op.ndim - n_named)
        elif n_named != op.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({n_named}) does not match the "
                               f"number of dimensions ({op.ndim}) for operand {i} and no ellipsis was given")
    n_ell = max(ell_dims, default=0)
    ell = "".join(spare[:n_ell])
    subs = [t.replace("...", ell[n_ell - (op.ndim - len(t.replace("...", ""))):] if n_ell else "")
            if "..." in t else t for t, op in zip(terms, operands)]
    if arrow:
        if rhs.count("...") > 1:
            raise RuntimeError("einsum(): found more than one ellipsis in the output subscripts")
        out = rhs.replace("...", ell)
        for c in rhs.replace("...", ""):
            if rhs.count(c) > 1:
                raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the output")
            if not any(c in s for s in terms):
                raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation for any input "
                                   f"operand")
    else:
        named = "".join(t.replace("...", "") for t in terms)
        out = ell + "".join(sorted((c for c in set(named) if named.count(c) == 1), key=_LETTERS.index))
    sizes: dict[str, int] = {}
    for i, (s, op) in enumerate(zip(subs, operands)):
        for c, n in zip(s, op.shape):
            if c in sizes and n != sizes[c] and 1 not in (n, sizes[c]):
                raise RuntimeError(f"einsum(): subscript {c} has size {n} for operand {i} which does not broadcast "
                                   f"with previously seen size {sizes[c]}")
            if c not in sizes or sizes[c] == 1:
                sizes[c] = n
        if len(set(s)) < len(s):
            for c in set(s):
                if s.count(c) > 1 and len({op.shape[j] for j, ch in enumerate(s) if ch == c}) > 1:
                    raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {i} but the sizes don't "
                                       f"match, {op.shape}")
    ops = []
    for s, op in zip(subs, operands):
        shape = tuple(sizes[c] for c in s)
        ops.append(op.expand(*shape) if shape != tuple(op.shape) else op)
    return Einsum.apply(*ops, inputs=tuple(subs), output=out)
