"""Large-n algebra (pivoted Cholesky, greedy pivots, preconditioned CG, landmark and FITC
posteriors) against numpy and LAPACK."""

import numpy as np
import pytest
import torch

from transferscope.dino.scalable import (
    BlockKernel,
    IterativePosterior,
    NystromPosterior,
    conjugate_gradients,
    greedy_pivots,
    neighbour_variance,
    pivoted_cholesky,
)


def _rbf(A, B, scale=0.7):
    return np.exp(-((A[:, None] - B[None]) ** 2).sum(-1) / (2 * scale**2))


def test_pivoted_cholesky_of_a_rank_deficient_gram():
    rng = np.random.default_rng(0)
    B = rng.normal(size=(40, 6)) * np.linspace(0.5, 3, 40)[:, None]
    gram = B @ B.T  # rank 6
    R, pivots = pivoted_cholesky(torch.from_numpy(gram), 1e-12)
    assert R.shape == (40, 6) and len(pivots) == 6
    np.testing.assert_allclose(R.numpy() @ R.numpy().T, gram, atol=1e-9 * gram.max())
    assert int(pivots[0]) == int(np.argmax(np.diag(gram)))  # greedy: largest variance first


def test_cg_solves_several_right_hand_sides():
    rng = np.random.default_rng(1)
    M = rng.normal(size=(60, 60))
    A = M @ M.T + 60 * np.eye(60)
    b = rng.normal(size=(60, 3))
    x, iterations, residual = conjugate_gradients(
        lambda v: torch.from_numpy(A) @ v, torch.from_numpy(b), lambda r: r.clone(), 1e-12, 500)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b), rtol=1e-9, atol=1e-12)
    assert residual <= 1e-12 and 0 < iterations <= 60


def _posterior(X, y, noise, landmarks, cache_bytes):
    K = torch.from_numpy(_rbf(X, X))
    kernel = BlockKernel(lambda a, b: K[a:b], len(X), cache_bytes, block_entries=1000)
    return IterativePosterior(kernel, K[:, landmarks], K[landmarks][:, landmarks],
                              torch.from_numpy(noise), torch.from_numpy(y), tol=1e-11)


def _exact(X, Xq, y, noise):
    K_noisy = _rbf(X, X) + np.diag(noise)
    Kq = _rbf(Xq, X)
    mean = Kq @ np.linalg.solve(K_noisy, y)
    var = 1 - np.einsum("ij,ji->i", Kq, np.linalg.solve(K_noisy, Kq.T))
    return Kq, mean, var


def _data(seed=2, n=150):
    rng = np.random.default_rng(seed)
    X, Xq = rng.normal(size=(n, 2)), rng.normal(size=(9, 2))
    y = np.sin(X[:, :1] * 2) + 0.1 * rng.normal(size=(n, 1))
    noise = np.r_[np.full(100, 0.01), np.full(n - 100, 0.03)]
    return X, Xq, y, noise


def test_cg_mean_with_few_landmarks_is_the_exact_gp_mean():
    X, Xq, y, noise = _data()
    Kq, exp_mean, _ = _exact(X, Xq, y, noise)
    few = np.arange(0, 150, 10)
    cached = _posterior(X, y, noise, few, cache_bytes=1e9)
    assert cached.residual <= 1e-11
    np.testing.assert_allclose(cached.mean(torch.from_numpy(Kq)).numpy(), exp_mean,
                               rtol=1e-8, atol=1e-9)
    recomputed = _posterior(X, y, noise, few, cache_bytes=0)  # matrix-free products
    np.testing.assert_allclose(recomputed.weights.numpy(), cached.weights.numpy(), rtol=1e-10)


def test_neighbour_variance_bounds_the_exact_variance_and_meets_it_at_full_size():
    X, Xq, y, noise = _data()
    Kq, _, exp_var = _exact(X, Xq, y, noise)
    K = torch.from_numpy(_rbf(X, X))
    args = (torch.from_numpy(Kq), torch.ones(9, dtype=torch.float64),
            torch.ones(150, dtype=torch.float64),
            lambda idx: K[idx.unsqueeze(-1), idx.unsqueeze(-2)], torch.from_numpy(noise))
    full = neighbour_variance(*args, size=150, chunk=4).numpy()
    np.testing.assert_allclose(full, exp_var, rtol=1e-8, atol=1e-12)
    small = neighbour_variance(*args, size=5).numpy()
    assert (small >= exp_var - 1e-12).all() and (small > exp_var + 1e-6).any()
    # its own closed form: conditioning on the 5 most correlated points only
    for i in range(9):
        idx = np.argsort(-Kq[i])[:5]
        sub = K.numpy()[np.ix_(idx, idx)] + np.diag(noise[idx])
        assert small[i] == pytest.approx(1 - Kq[i, idx] @ np.linalg.solve(sub, Kq[i, idx]),
                                         rel=1e-9, abs=1e-12)


def test_low_rank_product_kernel_matches_the_dense_kronecker_form():
    """Entries, batched blocks and the diagonal of ``a k (E E^T) (C C^T)`` against the dense
    product with the n x 2r Kronecker embedding (what the estimator's ``embedding`` builds)."""
    from transferscope.dino.kernels import kernel_diag, ntk_kernel
    from transferscope.dino.scalable import LowRankProductKernel

    rng = np.random.default_rng(4)
    X = torch.from_numpy(rng.normal(size=(30, 3)))
    E = torch.from_numpy(rng.normal(size=(30, 7)))
    lam = 0.6
    C = torch.tensor([[1.0, 0.0]] * 18 + [[lam, np.sqrt(1 - lam**2)]] * 12, dtype=torch.float64)
    op = LowRankProductKernel(lambda a, b: ntk_kernel(a, b, 2, 1.0, 1.0),
                              lambda a: kernel_diag(a, "ntk", 2, 1.0, 1.0), X, E, C,
                              torch.tensor(1.7, dtype=torch.float64))
    U = (E.unsqueeze(2) * C.unsqueeze(1)).reshape(30, -1)  # u_i = e_i (x) c_i
    dense = (1.7 * ntk_kernel(X, X, 2, 1.0, 1.0) * (U @ U.T)).numpy()
    np.testing.assert_allclose(op.entries(slice(None), slice(None)).numpy(), dense, rtol=1e-12)
    rows, cols = torch.tensor([3, 20, 7]), torch.tensor([25, 0])
    np.testing.assert_allclose(op.entries(rows, cols).numpy(), dense[np.ix_([3, 20, 7], [25, 0])],
                               rtol=1e-12)
    idx = torch.tensor([[1, 19, 29], [0, 2, 4]])
    batched = op.entries(idx, idx).numpy()
    for b in range(2):
        np.testing.assert_allclose(batched[b], dense[np.ix_(idx[b].numpy(), idx[b].numpy())],
                                   rtol=1e-12)
    # the O(n) diagonal is exact; the full kernel at angle 0 is off by ~1e-8 (docs/dino.md)
    np.testing.assert_allclose(op.diagonal().numpy(), np.diag(dense), rtol=1e-7)
    # a source-target entry carries lambda, a target-target one does not
    assert dense[0, 20] / (1.7 * ntk_kernel(X[:1], X[20:21], 2, 1.0, 1.0).item()
                           * float(E[0] @ E[20])) == pytest.approx(lam, rel=1e-12)
    blocks = op.row_blocks(cache_bytes=0)
    v = torch.from_numpy(rng.normal(size=(30, 2)))
    np.testing.assert_allclose(blocks.matmul(v).numpy(), dense @ v.numpy(), rtol=1e-10)


def test_greedy_pivots_are_lapacks_pivot_order_from_columns_only():
    """The partial pivoted Cholesky from m kernel columns picks the same first 15 rows as
    LAPACK's dpstrf on the whole matrix; forced rows come first, in their order."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 3)) * np.linspace(0.3, 2.0, 80)[:, None]
    K = _rbf(X, X, 1.3) * np.outer(np.linspace(1, 2, 80), np.linspace(1, 2, 80))
    asked = []

    def column(p):
        asked.append(p)
        return torch.from_numpy(K[:, p])

    got = greedy_pivots(column, torch.from_numpy(np.diag(K).copy()), 15)
    _, lapack = pivoted_cholesky(torch.from_numpy(K), 1e-14)
    assert got.tolist() == lapack[:15].tolist() and asked == got.tolist()
    forced = greedy_pivots(lambda p: torch.from_numpy(K[:, p]),
                           torch.from_numpy(np.diag(K).copy()), 6, first=torch.tensor([7, 3]))
    assert forced[:2].tolist() == [7, 3] and len(set(forced.tolist())) == 6


def test_fitc_posterior_is_its_textbook_formula():
    """Snelson & Ghahramani's FITC written out in numpy: Q = K_nm K_mm^-1 K_mn,
    Lambda = diag(K - Q) + noise, mean_* = Q_*n (Q + Lambda)^-1 y,
    var_* = k_** - Q_*n (Q + Lambda)^-1 Q_n*, plus exact finite-rank mean features H:
    the GP is Q + H H^T with Lambda's correction from the kernel part only."""
    rng = np.random.default_rng(6)
    X, Xq = rng.normal(size=(70, 2)), rng.normal(size=(9, 2))
    H, Hq = rng.normal(size=(70, 3)), rng.normal(size=(9, 3))
    y = rng.normal(size=(70, 2))
    noise = np.where(np.arange(70) < 50, 0.05, 0.2)
    Z = X[[3, 11, 20, 41, 55, 60]]
    K_nm, K_mm, K_qm = _rbf(X, Z), _rbf(Z, Z) + 1e-12 * np.eye(6), _rbf(Xq, Z)
    post = NystromPosterior(torch.from_numpy(K_mm),
                            lambda a, b: (torch.from_numpy(K_nm[a:b]), torch.ones(b - a,
                                          dtype=torch.float64), torch.from_numpy(H[a:b])),
                            70, torch.from_numpy(noise), torch.from_numpy(y), block_rows=16)
    mean, var = post.predict(torch.from_numpy(K_qm), torch.ones(9, dtype=torch.float64),
                             torch.from_numpy(Hq))
    Q = K_nm @ np.linalg.solve(K_mm, K_nm.T)
    lam = np.diag(1.0 - np.diag(Q) + noise)
    C = Q + H @ H.T + lam
    Q_qn = K_qm @ np.linalg.solve(K_mm, K_nm.T) + Hq @ H.T
    np.testing.assert_allclose(mean.numpy(), Q_qn @ np.linalg.solve(C, y), rtol=1e-8,
                               atol=1e-10)
    prior = 1.0 + (Hq * Hq).sum(1)
    expected = prior - np.einsum("ij,ji->i", Q_qn, np.linalg.solve(C, Q_qn.T))
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-8)
