"""The distribution factor ``g_ab(x, x')``: a kernel between re-weighted domain distributions.

Each domain ``a`` (0 = source, 1 = target) has base samples ``B_a`` and every point ``x`` of that
domain gets non-negative weights ``alpha_a(x)`` over ``B_a`` with mean 1. Its re-weighted kernel
mean embedding is ``m_a(x) = sum_m alpha_a(x)_m k(b_m, .)`` and

    g_ab(x, x') = <m_a(x), m_b(x')> / (||m_a(x)|| ||m_b(x')||)
                = alpha_a(x)^T G_ab alpha_b(x') / sqrt(alpha_a^T G_aa alpha_a  alpha_b^T G_bb alpha_b)

with ``G_ab = k(B_a, B_b)``. Normalising to a cosine is our choice (the paper's full text is
unavailable): it makes ``g_aa(x, x) = 1``, keeps ``k * g`` positive semi-definite (a product of
two kernels), and makes uniform weights give exactly the cosine of the two mean embeddings.

The weights come from a small learned scorer (also our choice):
``alpha_a(x)_m = M_a softmax_m( v_a . (phi(x) * phi(b_m)) + u_a . phi(b_m) )`` with a shared
feature map ``phi`` and domain scorers ``(v_a, u_a)``; they start at zero, i.e. uniform weights.

``factor="elu"`` uses the weight formula of the authors' released code
(github.com/junwu6/Distribution-Informed-NN, ``DINO.py``) inside this estimator: a linear feature
map ``phi`` (width 8), one linear scorer per domain on ``[phi(x), phi(b_m)]``,
``alpha = elu(score) / mean(elu(score))`` (signed: ELU reaches down to -1) and the unnormalised
``g_ab = alpha_a^T G_ab alpha_b / (M_a M_b)``. The division by ``M_a M_b`` is ours (a constant
the amplitude absorbs when ``M_S = M_T``); so is the start at uniform weights (scorer weights 0,
bias 1), where the authors start from PyTorch's random initialisation. Their whole algorithm, as
released, is ``authors.AuthorsDINO``.

Inner products are computed through a factor ``G = R R^T`` of the joint Gram matrix of all base
samples (pivoted Cholesky, LAPACK ``dpstrf``), so ``g`` is a cosine between rows of
``alpha_a(x) R_a``. The factorisation stops once every residual entry is below ``rank_tol``
times the largest diagonal entry: exact to rounding at 1e-12, and a Gram matrix with repeated
base samples (rank-deficient) needs no jitter. The ReLU kernels are rough (their spectrum decays
slowly), so for distinct base samples the rank stays close to their number.
"""

from __future__ import annotations

from typing import get_args

import torch

from transferscope.dino.kernels import KernelFn
from transferscope.dino.params import FactorForm
from transferscope.dino.scalable import pivoted_cholesky


def mean_embedding_cosine(kernel: KernelFn, B_s: torch.Tensor, B_t: torch.Tensor) -> torch.Tensor:
    """``<mu_S, mu_T> / (||mu_S|| ||mu_T||)`` of the empirical kernel mean embeddings."""
    cross = kernel(B_s, B_t).mean()
    return cross / torch.sqrt(kernel(B_s, B_s).mean() * kernel(B_t, B_t).mean())


FORMS: tuple[str, ...] = get_args(FactorForm)
ELU_FEATURES = 8  # the authors' feature-map width (``feat_dim`` in their DINO.py)


class DistributionFactor(torch.nn.Module):
    """Learned weights over base samples and the cosine factor ``g`` they induce."""

    # buffers (registered in __init__) and the feature map, typed for the checker
    base_source: torch.Tensor
    base_target: torch.Tensor
    factor_source: torch.Tensor
    factor_target: torch.Tensor
    phi: torch.nn.Module

    def __init__(
        self,
        kernel: KernelFn,
        base_source: torch.Tensor,
        base_target: torch.Tensor,
        hidden: int = 16,
        seed: int = 0,
        rank_tol: float = 1e-12,
        form: str = "cosine",
        factor: torch.Tensor | None = None,
    ):
        """``factor`` (the joint Gram's ``R``, source rows first) skips the factorisation: a
        model file gives the stored one, so loading never depends on LAPACK's rounding."""
        super().__init__()
        self.form = form
        generator = torch.Generator().manual_seed(seed)
        n_features = base_source.shape[1]
        self.register_buffer("base_source", base_source.to(torch.float64))
        self.register_buffer("base_target", base_target.to(torch.float64))
        both = torch.cat([self.base_source, self.base_target])
        if factor is None:
            factor, _ = pivoted_cholesky(kernel(both, both), rank_tol)
        self.register_buffer("factor_source", factor[: base_source.shape[0]])
        self.register_buffer("factor_target", factor[base_source.shape[0]:])
        first, last = torch.nn.Linear(n_features, hidden), torch.nn.Linear(hidden, hidden)
        self.phi = torch.nn.Sequential(first, torch.nn.Tanh(), last).to(torch.float64)
        with torch.no_grad():
            for layer in (first, last):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator,
                                               dtype=torch.float64) / n_features**0.5)
                layer.bias.zero_()
        self.pair_scorer = torch.nn.Parameter(torch.zeros(2, hidden, dtype=torch.float64))
        self.base_scorer = torch.nn.Parameter(torch.zeros(2, hidden, dtype=torch.float64))
        if form == "elu":
            linear = torch.nn.Linear(n_features, ELU_FEATURES).to(torch.float64)
            self.phi = linear
            with torch.no_grad():
                linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator,
                                                dtype=torch.float64) / n_features**0.5)
                linear.bias.zero_()
            # per domain: weights on [phi(x), phi(b)] and a bias; zero weights, bias 1 = uniform
            self.pair_scorer = torch.nn.Parameter(
                torch.zeros(2, 2 * ELU_FEATURES, dtype=torch.float64))
            self.base_scorer = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))

    @property
    def rank(self) -> int:
        """Dimension of the embedding space (rank of the joint base Gram matrix)."""
        return int(self.factor_source.shape[1])

    def weights(self, X: torch.Tensor, domain: int) -> torch.Tensor:
        """``alpha_domain(X)``: (n, M_domain), each row with mean 1 (non-negative for the cosine
        form; signed for the ELU form)."""
        base = self.base_source if domain == 0 else self.base_target
        phi_x, phi_b = self.phi(X), self.phi(base)
        if self.form == "elu":
            w = self.pair_scorer[domain]
            half = phi_x.shape[1]
            scores = (phi_x @ w[:half]).unsqueeze(1) + (phi_b @ w[half:]).unsqueeze(0)
            raw = torch.nn.functional.elu(scores + self.base_scorer[domain])
            return raw / raw.mean(dim=1, keepdim=True)
        scores = (phi_x * self.pair_scorer[domain]) @ phi_b.transpose(0, 1)
        scores = scores + (phi_b @ self.base_scorer[domain]).unsqueeze(0)
        return base.shape[0] * torch.softmax(scores, dim=1)

    def embedding(self, X: torch.Tensor, domain: int) -> torch.Tensor:
        """Coordinates of the re-weighted mean embedding ``m_domain(x)``, (n, rank): unit norm
        for the cosine form, as they are for the ELU form."""
        factor = self.factor_source if domain == 0 else self.factor_target
        coords = self.weights(X, domain) @ factor / factor.shape[0]
        if self.form == "elu":
            return coords
        return coords / coords.norm(dim=1, keepdim=True).clamp_min(1e-300)

    def forward(self, X1: torch.Tensor, a: int, X2: torch.Tensor, b: int) -> torch.Tensor:
        """``g_ab(X1, X2)``."""
        return self.embedding(X1, a) @ self.embedding(X2, b).transpose(0, 1)
