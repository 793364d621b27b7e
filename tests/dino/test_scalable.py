"""Large-n algebra (pivoted Cholesky, preconditioned CG, landmark posterior) against numpy."""

import numpy as np
import torch

from transferscope.dino.scalable import (
    BlockKernel,
    IterativePosterior,
    conjugate_gradients,
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


def test_landmark_posterior_against_the_exact_gp():
    rng = np.random.default_rng(2)
    X, Xq = rng.normal(size=(150, 2)), rng.normal(size=(9, 2))
    y = np.sin(X[:, :1] * 2) + 0.1 * rng.normal(size=(150, 1))
    noise = np.r_[np.full(100, 0.01), np.full(50, 0.03)]
    K_noisy = _rbf(X, X) + np.diag(noise)
    Kq = _rbf(Xq, X)
    exp_mean = Kq @ np.linalg.solve(K_noisy, y)
    exp_var = 1 - np.einsum("ij,ji->i", Kq, np.linalg.solve(K_noisy, Kq.T))
    prior = torch.ones(9, dtype=torch.float64)
    few = np.arange(0, 150, 10)
    cached = _posterior(X, y, noise, few, cache_bytes=1e9)
    assert cached.residual <= 1e-11
    mean, _ = cached.predict(torch.from_numpy(Kq), torch.from_numpy(Kq[:, few]), prior)
    np.testing.assert_allclose(mean.numpy(), exp_mean, rtol=1e-8, atol=1e-9)
    recomputed = _posterior(X, y, noise, few, cache_bytes=0)  # matrix-free products
    np.testing.assert_allclose(recomputed.weights.numpy(), cached.weights.numpy(), rtol=1e-10)
    every = np.arange(150)
    full = _posterior(X, y, noise, every, cache_bytes=1e9)
    _, var = full.predict(torch.from_numpy(Kq), torch.from_numpy(Kq), prior)
    np.testing.assert_allclose(var.numpy(), exp_var, rtol=1e-6, atol=1e-9)
