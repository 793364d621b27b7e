"""The analytic kernels against neural-tangents (stored fixture) and closed forms."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from transferscope.dino import kernels

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "nt_kernels.json").read_text())
X1 = torch.tensor(FIXTURE["x1"], dtype=torch.float64)
X2 = torch.tensor(FIXTURE["x2"], dtype=torch.float64)


def _degenerate(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Pairs at angle 0 or pi, where neural-tangents' sqrt(q1 q2 - c^2) rounds to ~1e-8."""
    cos = (a @ b.T) / torch.outer(a.norm(dim=1), b.norm(dim=1))
    return (cos.abs() > 1 - 1e-12).numpy()


@pytest.mark.parametrize("entry", FIXTURE["entries"], ids=lambda e: f"L{e['depth']}-w{e['w_std']}-b{e['b_std']}")
@pytest.mark.parametrize("name", ["nngp", "ntk"])
def test_kernels_equal_neural_tangents(entry, name):
    fn = kernels.nngp_kernel if name == "nngp" else kernels.ntk_kernel
    args = (entry["depth"], entry["w_std"], entry["b_std"])
    for suffix, (a, b) in (("12", (X1, X2)), ("11", (X1, X1))):
        ref = np.array(entry[f"{name}_{suffix}"])
        got = fn(a, b, *args).numpy()
        regular = ~_degenerate(a, b)
        assert regular.sum() > 20
        np.testing.assert_allclose(got[regular], ref[regular], rtol=1e-9, atol=0)
        # At angle 0 / pi both sides are within rounding of sqrt(eps) of each other.
        np.testing.assert_allclose(got[~regular], ref[~regular], rtol=1e-7,
                                   atol=1e-7 * np.abs(ref).max())


@pytest.mark.parametrize("entry", FIXTURE["entries"][:4], ids=lambda e: f"L{e['depth']}")
def test_diagonal_is_the_exact_angle_zero_value(entry):
    args = (entry["depth"], entry["w_std"], entry["b_std"])
    for name in ("nngp", "ntk"):
        diag = kernels.kernel_diag(X1, name, *args).numpy()
        np.testing.assert_allclose(diag, np.diag(entry[f"{name}_11"]), rtol=1e-7)


def test_depth_one_arc_cosine_by_hand():
    """Cho & Saul's first-order arc-cosine kernel, written out for two vectors."""
    x, y = np.array([1.0, 2.0, -0.5]), np.array([-0.3, 1.0, 2.0])
    w, b = 1.3, 0.2
    q_x, q_y = w**2 * x @ x / 3 + b**2, w**2 * y @ y / 3 + b**2
    c = w**2 * x @ y / 3 + b**2
    theta = math.acos(c / math.sqrt(q_x * q_y))
    relu = math.sqrt(q_x * q_y) / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
    nngp = w**2 * relu + b**2
    ntk = nngp + w**2 * c * (math.pi - theta) / (2 * math.pi)
    tx, ty = torch.from_numpy(x[None]), torch.from_numpy(y[None])
    assert kernels.nngp_kernel(tx, ty, 1, w, b).item() == pytest.approx(nngp, rel=1e-12)
    assert kernels.ntk_kernel(tx, ty, 1, w, b).item() == pytest.approx(ntk, rel=1e-12)


def test_batched_inputs_and_gradient_at_identical_points():
    batch = torch.stack([X1, 2 * X1])
    out = kernels.ntk_kernel(batch, batch, 3, 1.0, 0.5)
    assert out.shape == (2, 6, 6)
    np.testing.assert_allclose(out[0].numpy(), kernels.ntk_kernel(X1, X1, 3, 1.0, 0.5).numpy())
    scale = torch.ones(4, dtype=torch.float64, requires_grad=True)
    kernels.ntk_kernel(X1 * scale, X1 * scale, 2, 1.0, 0.5).sum().backward()
    assert torch.isfinite(scale.grad).all()


def test_monte_carlo_random_networks_match_nngp():
    """For one hidden layer the output covariance of random networks is exactly the NNGP kernel
    at any width (the hidden pre-activations are Gaussian), so a Monte-Carlo mean must match."""
    gen = torch.Generator().manual_seed(0)
    x = X1[:3]
    width, draws, w, b = 64, 20000, 1.5, 0.3
    W1 = torch.randn(draws, 4, width, generator=gen, dtype=torch.float64)
    b1 = torch.randn(draws, 1, width, generator=gen, dtype=torch.float64)
    h = torch.relu(w / 2.0 * (x @ W1) + b * b1)
    W2 = torch.randn(draws, width, 1, generator=gen, dtype=torch.float64)
    b2 = torch.randn(draws, 1, 1, generator=gen, dtype=torch.float64)
    out = w / math.sqrt(width) * (h @ W2) + b * b2
    empirical = torch.einsum("dio,djo->ij", out, out) / draws
    exact = kernels.nngp_kernel(x, x, 1, w, b)
    np.testing.assert_allclose(empirical.numpy(), exact.numpy(), rtol=0.05, atol=0.02)
