"""The warm-started RWY early-stopping rule and what a user needs to apply it.

Linearised fine-tuning with the half mean squared loss and full-batch step ``eta`` moves the
fitted values as ``f_{t+1} = f_t - eta K_n (f_t - y)`` from the pretrained outputs ``f_0``, so
the residual after ``t`` steps is ``(I - eta K_n)^t (y - f_0)``. Raskutti, Wainwright & Yu (2014)
stop that iteration with a rule that needs only the eigenvalues of ``K_n = K / n``, the noise
level ``sigma`` and the RKHS radius ``R`` (here: of ``f* - f_0``, the part fine-tuning must learn).

How the radius enters (our reading, documented because the paper's text is not available to us):
RWY state the rule for a unit ball, ``R_K(1/sqrt(eta t)) > 1 / (2 e sigma eta t)``. A target of
norm ``R`` with noise ``sigma`` is, after dividing ``y`` by ``R``, a unit-ball problem with noise
``sigma / R``; substituting gives the spec's rule ``R_K(1/sqrt(eta t)) > R / (2 e sigma eta t)``
and, by the same substitution, the critical inequality ``R_K(eps) <= R eps^2 / (2 e sigma)``.
With this choice ``1 / (eta T_hat)`` tracks ``eps_n^2`` for every ``R`` and ``sigma``, and the
error bound on the original scale is a constant times ``R^2 eps_n^2``.

All functions are pure: eigenvalues, kernels and residuals in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from transferscope.core.errors import InputError

E = math.e
_PSD_TOLERANCE = 1e-8


def _clean_eigenvalues(eigenvalues: np.ndarray) -> np.ndarray:
    """Float64 eigenvalues with round-off negatives set to zero; reject a non-PSD spectrum."""
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if lam.size == 0:
        raise InputError("eigenvalues: empty array: expected the n eigenvalues of K_n = K/n")
    if not np.all(np.isfinite(lam)):
        raise InputError("eigenvalues: contain NaN or inf: expected finite eigenvalues of K/n")
    top = float(lam.max())
    if top <= 0.0:
        raise InputError(
            f"eigenvalues: largest is {top:.3g}: expected a kernel with a positive eigenvalue"
        )
    if float(lam.min()) < -_PSD_TOLERANCE * top:
        raise InputError(
            f"eigenvalues: smallest is {float(lam.min()):.3g} (largest {top:.3g}): expected a "
            "positive semi-definite kernel (negative eigenvalues only at round-off level)"
        )
    return np.clip(lam, 0.0, None)


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise InputError(f"{name} = {value!r}: expected a finite number > 0")
    return value


def local_rademacher(eigenvalues: np.ndarray, eps: float | np.ndarray) -> float | np.ndarray:
    """``R_K(eps) = sqrt((1/n) sum_i min(lambda_i, eps^2))``, the localised complexity of RWY."""
    lam = _clean_eigenvalues(eigenvalues)
    eps_arr = np.asarray(eps, dtype=np.float64)
    sq = np.minimum(lam[None, :], (eps_arr.reshape(-1, 1)) ** 2)
    values = np.sqrt(sq.sum(axis=1) / lam.size)
    return float(values[0]) if eps_arr.ndim == 0 else values.reshape(eps_arr.shape)


def critical_radius(eigenvalues: np.ndarray, sigma: float, radius: float = 1.0) -> float:
    """Smallest ``eps > 0`` with ``R_K(eps) <= radius * eps^2 / (2 e sigma)``.

    ``R_K(eps)^2`` is piecewise linear in ``u = eps^2`` (slope = how many eigenvalues exceed
    ``u``), so the boundary is the root of a quadratic on one piece: solved exactly, no search.
    """
    lam = np.sort(_clean_eigenvalues(eigenvalues))[::-1]
    n = lam.size
    c2 = (_positive("radius", radius) / (2.0 * E * _positive("sigma", sigma))) ** 2
    # On the piece where exactly m eigenvalues are >= u: R_K^2 = (tail_m + m u) / n.
    tail = np.concatenate([np.cumsum(lam[::-1])[::-1], [0.0]])  # tail[m] = sum_{i>=m} lam_i
    upper = np.concatenate([[np.inf], lam])  # piece m is u in [lam[m], upper[m]]
    lower = np.concatenate([lam, [0.0]])
    for m in range(n + 1):
        disc = m * m + 4.0 * c2 * n * tail[m]
        u = (m + math.sqrt(disc)) / (2.0 * c2 * n)
        if lower[m] * (1 - 1e-12) <= u <= upper[m] * (1 + 1e-12):
            return math.sqrt(u)
    raise AssertionError("the critical inequality always has a boundary")  # pragma: no cover


def max_step_size(eigenvalues: np.ndarray) -> float:
    """``1 / lambda_max(K_n)``: above it linearised full-batch gradient descent diverges."""
    return 1.0 / float(_clean_eigenvalues(eigenvalues).max())


def check_step_size(eigenvalues: np.ndarray, step_size: float) -> float:
    """Reject a step size above ``1 / lambda_max(K_n)`` with the bound in the message."""
    eta = _positive("step size eta", step_size)
    bound = max_step_size(eigenvalues)
    if eta > bound * (1.0 + 1e-9):
        raise InputError(
            f"step size eta = {eta:.6g}: expected eta <= 1/lambda_max(K_n) = {bound:.6g} "
            "(larger steps make linearised gradient descent diverge)"
        )
    return eta


def rwy_stopping_time(
    eigenvalues: np.ndarray, step_size: float, sigma: float, radius: float = 1.0
) -> int:
    """``T_hat = min{t >= 1 : R_K(1/sqrt(eta t)) > radius / (2 e sigma eta t)} - 1``.

    ``eta t R_K(1/sqrt(eta t))`` never decreases in ``t`` (``R_K(eps)/eps^2`` is non-increasing
    in ``eps``), so the first crossing is found by doubling then bisection on integers.
    """
    lam = _clean_eigenvalues(eigenvalues)
    eta = check_step_size(lam, step_size)
    threshold = _positive("radius", radius) / (2.0 * E * _positive("sigma", sigma))
    n = lam.size

    def crossed(t: int) -> bool:
        horizon = eta * t
        complexity = math.sqrt(float(np.minimum(lam, 1.0 / horizon).sum()) / n)
        return complexity * horizon > threshold

    if crossed(1):
        return 0
    low, high = 1, 2
    while not crossed(high):
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        if crossed(mid):
            high = mid
        else:
            low = mid
    return high - 1


def gradient_descent_fit(kernel: np.ndarray, residual: np.ndarray, step_size: float,
                         steps: int, *, eig: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Fitted change ``f_t - f_0 = (I - (I - eta K_n)^t) r`` in closed form via the eigenbasis
    (``eig``: the kernel's :func:`eig_kn`, when the caller has it already)."""
    evals, evecs = eig if eig is not None else eig_kn(kernel)
    shrink = 1.0 - np.power(1.0 - step_size * evals, steps)
    return evecs @ (shrink * (evecs.T @ np.asarray(residual, dtype=np.float64)))


def kernel_ridge_fit(kernel: np.ndarray, residual: np.ndarray, ridge: float, *,
                     eig: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Fitted change ``K_n (K_n + lam I)^{-1} r`` of kernel ridge on the residual (penalty lam)."""
    evals, evecs = eig if eig is not None else eig_kn(kernel)
    return evecs @ (evals / (evals + ridge) * (evecs.T @ np.asarray(residual, dtype=np.float64)))


def eig_kn(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending, round-off negatives set to 0) and eigenvectors of the
    symmetrised ``K/n``: the one eigendecomposition a command computes and passes down."""
    k = np.asarray(kernel, dtype=np.float64)
    evals, evecs = np.linalg.eigh(0.5 * (k + k.T) / k.shape[0])
    return np.clip(evals, 0.0, None), evecs



@dataclass(kw_only=True, frozen=True)
class NoiseEstimate:
    """sigma from a GCV-tuned kernel ridge fit of the residual (ridge in ``K_n`` units)."""

    sigma: float
    ridge: float
    degrees_of_freedom: float
    gcv_score: float


def estimate_noise(kernel: np.ndarray, residual: np.ndarray,
                   ridge_grid: np.ndarray | None = None, *,
                   eig: tuple[np.ndarray, np.ndarray] | None = None) -> NoiseEstimate:
    """``sigma^2 = ||(I - H) r||^2 / tr(I - H)`` with ``H = K_n (K_n + lam I)^{-1}``.

    ``lam`` minimises generalised cross-validation ``n ||(I - H) r||^2 / tr(I - H)^2`` over a
    log grid spanning ``1e-8 .. 10`` times ``lambda_max(K_n)`` (our default grid), among the
    ridges that leave at least ``n / 4`` residual degrees of freedom ``tr(I - H)`` (our
    safeguard: with few examples or a well-conditioned kernel GCV drifts to interpolation,
    where ``sigma`` collapses towards 0 and ``T_hat`` explodes).
    """
    r = np.asarray(residual, dtype=np.float64).ravel()
    evals, evecs = eig if eig is not None else eig_kn(kernel)
    if evecs.shape[0] != r.size:
        raise InputError(f"residual: length {r.size}: expected one value per kernel row "
                         f"({evecs.shape[0]})")
    return _noise_from_eig(evals, evecs.T @ r, ridge_grid)


def _noise_from_eig(evals: np.ndarray, coords: np.ndarray,
                    ridge_grid: np.ndarray | None = None) -> NoiseEstimate:
    """GCV on the eigen-coordinates ``U^T r`` of the residual."""
    n = coords.size
    coords_sq = coords**2
    grid = (np.asarray(ridge_grid, dtype=np.float64) if ridge_grid is not None
            else float(evals.max()) * np.logspace(-8, 1, 181))
    keep = grid[:, None] / (evals[None, :] + grid[:, None])  # eigenvalues of I - H per lam
    rss = (keep**2 * coords_sq[None, :]).sum(axis=1)
    trace = keep.sum(axis=1)
    gcv = np.where(trace >= n / 4.0, n * rss / trace**2, np.inf)
    if not np.isfinite(gcv).any():
        raise InputError("ridge grid: no ridge leaves n/4 residual degrees of freedom: "
                         "expected larger ridges in the grid")
    best = int(np.argmin(gcv))
    return NoiseEstimate(
        sigma=math.sqrt(rss[best] / trace[best]),
        ridge=float(grid[best]),
        degrees_of_freedom=float(n - trace[best]),
        gcv_score=float(gcv[best]),
    )


def estimate_radius(kernel: np.ndarray, residual: np.ndarray, ridge: float, *,
                    eig: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """``R = sqrt(r^T (K + n lam I)^{-1} r)``: RKHS size of ``f* - f_0`` seen through ridge lam.

    It is the minimum over ``g`` of ``||g||_H^2 + ||r - g(X)||^2 / (n lam)``, so it upper-bounds
    the norm of the ridge fit and tends to the minimum-norm interpolant's norm as ``lam -> 0``.
    """
    evals, evecs = eig if eig is not None else eig_kn(kernel)
    r = np.asarray(residual, dtype=np.float64).ravel()
    return _radius_from_eig(evals, evecs.T @ r, _positive("ridge", ridge))


def _radius_from_eig(evals: np.ndarray, coords: np.ndarray, ridge: float) -> float:
    n = coords.size
    return math.sqrt(float((coords**2 / (n * evals + n * ridge)).sum()))


LOSS_STEP_FACTOR = {"half-mse": 1.0, "mse": 2.0}
"""``eta = factor * lr``: the gradient of ``mean((f - y)^2) / 2`` is ``J^T (f - y) / n`` (factor 1);
without the 1/2 (``torch.nn.MSELoss``) it doubles."""


@dataclass(kw_only=True, frozen=True)
class Schedule:
    """What to set in a trainer so that it stops at the predicted time."""

    step_size: float
    learning_rate: float
    loss: str
    full_batch_steps: int
    batch_size: int
    minibatch_steps: int
    epochs: float


def training_schedule(stopping_time: int, n: int, batch_size: int, learning_rate: float,
                      loss: str = "half-mse") -> Schedule:
    """Translate ``T_hat`` full-batch steps into minibatch SGD with batch ``B`` and the same lr.

    A minibatch step with a batch-mean loss moves ``f`` by the full-batch step in expectation,
    so ``T_hat`` full-batch steps are ``T_hat`` minibatch steps, i.e. ``T_hat * B / n`` epochs
    (one epoch = ``n / B`` steps). SGD noise is ignored, which is fair for small ``lr``.
    """
    if loss not in LOSS_STEP_FACTOR:
        raise InputError(f"loss = {loss!r}: expected one of {', '.join(LOSS_STEP_FACTOR)}")
    if batch_size < 1 or batch_size > n:
        raise InputError(f"batch size = {batch_size}: expected an integer in 1..n = {n}")
    lr = _positive("learning rate", learning_rate)
    return Schedule(
        step_size=LOSS_STEP_FACTOR[loss] * lr,
        learning_rate=lr,
        loss=loss,
        full_batch_steps=int(stopping_time),
        batch_size=int(batch_size),
        minibatch_steps=int(stopping_time),
        epochs=float(stopping_time) * batch_size / n,
    )
