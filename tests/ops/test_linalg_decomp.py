"""torch.linalg: det, slogdet, logdet, inv, solve, solve_triangular, cholesky, qr, eigh, svd, svdvals, pinv,
lstsq — torch's values and every input gradient over random batched shapes and both float dtypes, float64
gradcheck (and gradgradcheck) of each differentiable one, torch's error cases."""

import numpy as np
import pytest
import torch

import lamina
from tests.helpers import Input, check_grads, oracle

TOL32 = dict(rtol=2e-4, atol=2e-4)


def ns(x):
    return lamina if isinstance(x, lamina.Tensor) else torch


def wellcond(*shape, seed=0):
    """Random matrices with a dominant diagonal: far from singular."""
    a = np.random.default_rng(seed).standard_normal(shape)
    return Input(array=a + 3 * np.eye(shape[-1]))


def spd(x):
    """A symmetric positive-definite matrix built differentiably from ``x``."""
    n = x.shape[-1]
    return x @ x.mT + n * ns(x).eye(n, dtype=x.dtype)


def tol(dtype):
    return TOL32 if dtype == "float32" else {}


SQUARE_FNS = {
    "det": lambda a: ns(a).linalg.det(a),
    "det_top": lambda a: ns(a).det(a),
    "slogdet": lambda a: (lambda r: (r.sign.detach(), r.logabsdet))(ns(a).linalg.slogdet(a)),
    "logdet": lambda a: ns(a).logdet(spd(a)),
    "inv": lambda a: ns(a).linalg.inv(a),
    "inverse": lambda a: a.inverse(),
    "cholesky": lambda a: ns(a).linalg.cholesky(spd(a)),
    "cholesky_upper": lambda a: ns(a).linalg.cholesky(spd(a), upper=True),
    "eigvalsh": lambda a: ns(a).linalg.eigvalsh(a + a.mT),
    "svdvals": lambda a: ns(a).linalg.svdvals(a),
    "pinv": lambda a: ns(a).linalg.pinv(a),
}


@pytest.mark.parametrize("name", list(SQUARE_FNS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (2, 1, 2, 2)])
def test_square_functions_match_torch(name, dtype, shape):
    oracle(SQUARE_FNS[name], wellcond(*shape), dtype=dtype, **tol(dtype))


@pytest.mark.parametrize("name", list(SQUARE_FNS))
def test_square_functions_gradcheck(name):
    check_grads(SQUARE_FNS[name], wellcond(2, 3, 3))


def test_det_of_a_singular_matrix_has_torchs_gradient():
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, -1.0, 2.0]])  # rank 2: det is exactly 0
    # torch's first-order path multiplies by det = 0 and returns zeros; its create_graph path (and the
    # mathematics) gives the cofactor matrix, which lamina gives in both
    ta = torch.tensor(a, requires_grad=True)
    (want,) = torch.autograd.grad(torch.linalg.det(ta), ta, create_graph=True)
    la = lamina.tensor(a, requires_grad=True)
    lamina.linalg.det(la).backward()
    np.testing.assert_allclose(la.grad.numpy(), want.detach().numpy(), atol=1e-12)
    assert lamina.autograd.gradcheck(lambda x: lamina.linalg.det(x), (lamina.tensor(a, requires_grad=True),))
    x = lamina.tensor([[2.0, 1.0], [4.0, 2.0]], requires_grad=True)
    lamina.linalg.det(x).backward()  # the cofactor matrix, by hand: [[d, -c], [-b, a]]
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, -4.0], [-1.0, 2.0]])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_solve_matches_torch_with_vectors_batches_and_left(dtype):
    oracle(lambda a, b: ns(a).linalg.solve(a, b), wellcond(3, 3), (3, 2), dtype=dtype, **tol(dtype))
    oracle(lambda a, b: ns(a).linalg.solve(a, b), wellcond(3, 3), (3,), dtype=dtype, **tol(dtype))
    oracle(lambda a, b: ns(a).linalg.solve(a, b), wellcond(2, 3, 3), (2, 3), dtype=dtype, **tol(dtype))
    oracle(lambda a, b: ns(a).linalg.solve(a, b), wellcond(2, 1, 3, 3), (4, 3, 2), dtype=dtype, **tol(dtype))
    oracle(lambda a, b: ns(a).linalg.solve(a, b, left=False), wellcond(3, 3), (2, 3), dtype=dtype, **tol(dtype))
    check_grads(lambda a, b: lamina.linalg.solve(a, b), wellcond(2, 3, 3), (3, 2))


def test_solve_triangular_matches_torch():
    for upper in (True, False):
        for left in (True, False):
            b_shape = (3, 2) if left else (2, 3)
            oracle(lambda a, b: ns(a).linalg.solve_triangular(a, b, upper=upper, left=left), wellcond(3, 3), b_shape)
    oracle(lambda a, b: ns(a).linalg.solve_triangular(a, b, upper=False, unitriangular=True), wellcond(3, 3), (3, 1))
    check_grads(lambda a, b: lamina.linalg.solve_triangular(a, b, upper=True), wellcond(3, 3), (3, 2))


QR_SHAPES = [(4, 3), (3, 3), (3, 5), (2, 4, 2)]


@pytest.mark.parametrize("shape", QR_SHAPES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_qr_matches_torch(shape, dtype):
    oracle(lambda a: tuple(ns(a).linalg.qr(a)), shape, dtype=dtype, **tol(dtype))
    if shape[-2] <= shape[-1]:
        oracle(lambda a: tuple(ns(a).linalg.qr(a, mode="complete")), shape, dtype=dtype, **tol(dtype))
    r = lamina.linalg.qr(lamina.randn(*shape), mode="r")
    assert r.Q.numel() == 0 and r.R.shape == torch.linalg.qr(torch.randn(*shape), mode="r").R.shape


@pytest.mark.parametrize("shape", QR_SHAPES)
def test_qr_gradcheck(shape):
    check_grads(lambda a: tuple(lamina.linalg.qr(a)), shape)


def _eigh_sign_free(uplo):
    """Eigenvalues, V∘V and V diag(λ) Vᵀ: independent of each eigenvector's arbitrary sign
    (LAPACK builds differ in it), so they can be compared with torch's, values and gradients."""

    def f(a):
        w, v = ns(a).linalg.eigh(a, UPLO=uplo)
        return w, v * v, (v * w.unsqueeze(-2)) @ v.mT

    return f


def test_eigh_matches_torch_and_reads_one_triangle():
    for uplo in ("L", "U"):
        oracle(_eigh_sign_free(uplo), (2, 4, 4))
        oracle(_eigh_sign_free(uplo), (3, 3), dtype="float32", **TOL32)
    a = np.random.default_rng(0).standard_normal((3, 3))
    for uplo, keep in (("L", np.tril), ("U", np.triu)):
        sym = keep(a) + keep(a, -1 if uplo == "L" else 1).T
        np.testing.assert_allclose(lamina.linalg.eigvalsh(lamina.tensor(a), UPLO=uplo).numpy(), np.linalg.eigvalsh(sym))
    # the eigenvectors' sign is arbitrary: gradcheck a sign-independent function of them
    check_grads(lambda a: (lambda r: (r.eigenvalues, r.eigenvectors * r.eigenvectors))(lamina.linalg.eigh(a + a.mT)),
                (3, 3))


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (3, 5), (2, 3, 2)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_svd_matches_torch(shape, dtype):
    def sign_free(a):
        u, s, vh = ns(a).linalg.svd(a, full_matrices=False)
        return s, u @ vh, u * u, vh * vh, (u * s.unsqueeze(-2))[..., :1, :] @ vh

    oracle(sign_free, shape, dtype=dtype, **tol(dtype))
    u, s, vh = lamina.linalg.svd(lamina.randn(*shape))  # full matrices by default, as torch
    assert u.shape[-1] == shape[-2] and vh.shape[-2] == shape[-1]


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (3, 5)])
def test_svd_gradcheck_on_sign_free_functions(shape):
    def f(a):
        u, s, vh = lamina.linalg.svd(a, full_matrices=False)
        return s, u @ vh, u * u, vh * vh

    check_grads(f, shape)


@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 4, 2)])
def test_pinv_and_lstsq_match_torch(shape):
    oracle(lambda a: ns(a).linalg.pinv(a), shape)
    check_grads(lambda a: lamina.linalg.pinv(a), shape)
    b = shape[:-1] + (2,)
    oracle(lambda a, b: ns(a).linalg.lstsq(a, b).solution, shape, b)
    check_grads(lambda a, b: lamina.linalg.lstsq(a, b).solution, shape, b)
    rng = np.random.default_rng(0)
    a, bb = rng.standard_normal(shape), rng.standard_normal(b)
    for driver in (None, "gelsd"):
        ours = lamina.linalg.lstsq(lamina.tensor(a), lamina.tensor(bb), driver=driver)
        theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(bb), driver=driver)
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-10, atol=1e-10)


def test_rank_deficient_pinv_and_lstsq_are_minimum_norm():
    a = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])  # rank 1
    b = np.array([[1.0], [2.0], [0.0]])
    np.testing.assert_allclose(lamina.linalg.pinv(lamina.tensor(a)).numpy(), np.linalg.pinv(a), atol=1e-12)
    got = lamina.linalg.lstsq(lamina.tensor(a), lamina.tensor(b), driver="gelsd")
    want = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver="gelsd")
    np.testing.assert_allclose(got.solution.numpy(), want.solution.numpy(), atol=1e-12)
    assert got.rank.item() == want.rank.item() == 1


def test_hand_computed_two_by_two():
    a = lamina.tensor([[4.0, 2.0], [2.0, 3.0]], dtype=lamina.float64)
    assert lamina.linalg.det(a).item() == pytest.approx(8.0)
    np.testing.assert_allclose(lamina.linalg.inv(a).numpy(), [[3 / 8, -2 / 8], [-2 / 8, 4 / 8]])
    np.testing.assert_allclose(lamina.linalg.cholesky(a).numpy(), [[2.0, 0.0], [1.0, 2 ** 0.5]])  # L Lᵀ = a
    assert lamina.linalg.solve(a, lamina.tensor([8.0, 7.0], dtype=lamina.float64)).tolist() == pytest.approx(
        [1.25, 1.5])
    sign, lad = lamina.linalg.slogdet(-a)
    assert sign.item() == 1.0 and lad.item() == pytest.approx(np.log(8.0))
    assert np.isnan(lamina.logdet(lamina.tensor([[0.0, 1.0], [1.0, 0.0]])).item())


def test_errors_as_torch():
    sing = [[1.0, 2.0], [2.0, 4.0]]
    for op in ("inv", "cholesky"):
        with pytest.raises(RuntimeError):
            getattr(torch.linalg, op)(torch.tensor(sing))
        with pytest.raises(RuntimeError, match=op):
            getattr(lamina.linalg, op)(lamina.tensor(sing))
    with pytest.raises(RuntimeError, match="singular"):
        lamina.linalg.solve(lamina.tensor(sing), lamina.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="square"):
        lamina.linalg.det(lamina.zeros(2, 3))
    with pytest.raises(RuntimeError, match="floating point"):
        lamina.linalg.inv(lamina.eye(2, dtype=lamina.int64))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        lamina.linalg.solve(lamina.eye(3), lamina.zeros(2, 1))
    with pytest.raises(RuntimeError, match="same dtype"):
        lamina.linalg.solve(lamina.eye(2), lamina.zeros(2, dtype=lamina.float64))
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        lamina.linalg.qr(lamina.eye(2), mode="full")
    with pytest.raises(RuntimeError, match="full_matrices"):
        lamina.linalg.svd(lamina.randn(3, 2, requires_grad=True))


@pytest.mark.parametrize("shapes,dim", [(((4, 3), (4, 3)), -1), (((3, 2), (3, 1)), 0), (((2, 3, 5), (1, 3, 5)), 1)])
def test_cross_matches_torch(shapes, dim):
    oracle(lambda a, b: ns(a).linalg.cross(a, b, dim=dim), *shapes)
    oracle(lambda a, b: ns(a).cross(a, b, dim=dim), *shapes)
    check_grads(lambda a, b: lamina.linalg.cross(a, b, dim=dim), *shapes)
    assert lamina.cross(lamina.tensor([1.0, 0, 0]), lamina.tensor([0.0, 1, 0])).tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, -1, -2])
def test_matrix_power_matches_torch(n):
    oracle(lambda a: ns(a).linalg.matrix_power(a, n), wellcond(2, 3, 3))
    oracle(lambda a: a.matrix_power(n), wellcond(3, 3))
    if n:
        check_grads(lambda a: lamina.linalg.matrix_power(a, n), wellcond(3, 3))


def test_multi_dot_vecdot_and_matrix_rank_match_torch():
    oracle(lambda a, b, c: ns(a).linalg.multi_dot([a, b, c]), (3,), (3, 4), (4, 2))
    oracle(lambda a, b, c: ns(a).linalg.multi_dot([a, b, c]), (2, 3), (3, 4), (4,))
    check_grads(lambda a, b, c: lamina.linalg.multi_dot([a, b, c]), (2, 3), (3, 4), (4, 2))
    oracle(lambda a, b: ns(a).linalg.vecdot(a, b, dim=0), (3, 4), (3, 1))
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]])
    for kw in ({}, dict(atol=0.5), dict(rtol=0.3), dict(hermitian=True)):
        m = a @ a.T if kw.get("hermitian") else a
        assert lamina.linalg.matrix_rank(lamina.tensor(m), **kw).item() == torch.linalg.matrix_rank(
            torch.tensor(m), **kw).item()
    assert lamina.linalg.matrix_rank(lamina.tensor(np.stack([a, np.eye(3)]))).tolist() == [2, 3]
    with pytest.raises(RuntimeError, match="at least 2 tensors"):
        lamina.linalg.multi_dot([lamina.eye(2)])


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (2, 3, 5)])
def test_legacy_svd_qr_cholesky_pinverse_match_torch(shape):
    def sign_free_svd(a):
        u, s, v = ns(a).svd(a)
        return s, u @ v.mT, u * u, v * v

    oracle(sign_free_svd, shape)
    oracle(lambda a: tuple(a.qr()), shape)
    oracle(lambda a: ns(a).pinverse(a), shape)
    if shape[-1] == shape[-2]:
        oracle(lambda a: spd(a).cholesky(upper=True), shape)
    u, s, v = lamina.svd(lamina.randn(*shape), compute_uv=False)
    tu, ts, tv = torch.svd(torch.randn(*shape), compute_uv=False)
    assert u.shape == tu.shape and v.shape == tv.shape and not u.numpy().any()
    u, s, v = lamina.svd(lamina.randn(*shape), some=False)
    assert u.shape == torch.svd(torch.randn(*shape), some=False).U.shape


def test_nan_to_num_in_place():
    x = lamina.tensor([float("nan"), float("inf"), 1.0])
    assert x.nan_to_num_(posinf=5.0) is x and x.tolist() == [0.0, 5.0, 1.0]
