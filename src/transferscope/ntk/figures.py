"""The NTK part's figures: the spectrum of ``K/n`` with its decay fits, and real fine-tuning
next to the closed-form kernel trajectory. Each returns a matplotlib figure; the caller saves
it (``core.io.write_png``) or places it in a report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferscope.ntk.spectrum import SpectrumAnalysis


def spectrum_figure(analysis: SpectrumAnalysis):
    """Eigenvalues of ``K/n`` on log-log axes with the polynomial and exponential fits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lam = analysis.eigenvalues
    positive = lam > 0
    index = np.arange(1, lam.size + 1)
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.loglog(index[positive], lam[positive], ".", color="0.2", label="eigenvalues of K/n")
    styles = {"polynomial": "-", "exponential": "--"}
    for fit in analysis.fits.values():
        grid = np.arange(fit.index_range[0], fit.index_range[1] + 1)
        label = (f"{fit.model}: rate {fit.rate:.3g} [{fit.ci_low:.3g}, {fit.ci_high:.3g}], "
                 f"R^2 {fit.r_squared:.3f}")
        ax.loglog(grid, fit.predict(grid), styles[fit.model], label=label)
    ax.set_xlabel("index i")
    ax.set_ylabel("lambda_i")
    ax.set_title(f"eigen-decay of the empirical NTK (n = {analysis.n})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def finetune_figure(fine: dict):
    """Real vs closed-form kernel trajectory (left) and their distance (right), from the
    fine-tuning comparison's ``to_dict()`` (or the ``finetune.json`` it wrote)."""
    import matplotlib.pyplot as plt

    history = pd.DataFrame(fine["history"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(history["step"], history["train_loss"], "o-", label="real, train")
    axes[0].plot(history["step"], history["test_loss"], "s-", label="real, held-out")
    if "linear_test_loss" in fine:
        axes[0].plot(history["step"], fine["linear_train_loss"], "--", label="kernel GD, train")
        axes[0].plot(history["step"], fine["linear_test_loss"], ":", label="kernel GD, held-out")
        axes[1].plot(history["step"], fine["relative_distance"], "o-")
        axes[1].axhline(fine["regime_tolerance"], color="0.5", ls="--", label="tolerance")
        axes[1].set_ylabel("||f_real - f_lin|| / ||f_lin - f_0||")
        axes[1].set_xlabel("step")
        axes[1].legend(fontsize=8)
    axes[0].axvline(fine["t_hat"], color="C3", ls="--", label=f"T_hat = {fine['t_hat']}")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def residual_spectrum_figure(eigenvalues: np.ndarray, coords: np.ndarray, sigma: float,
                             cv_steps: int, lr: float):
    """``(U^T r)_i^2`` against ``lambda_i`` (eigenvalues of ``K/n``): where the residual the
    fine-tuning must fit lies. Directions with ``lr t lambda_i >> 1`` are fitted by step t, so
    the stop is set by how much of ``r`` sits above the noise level ``sigma^2``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lam = np.asarray(eigenvalues, dtype=np.float64)
    c2 = np.asarray(coords, dtype=np.float64) ** 2
    keep = lam > 0
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.loglog(lam[keep], np.maximum(c2[keep], 1e-300), "o", ms=3, color="0.2",
              label="(U^T r)_i^2 per eigen-direction")
    ax.axhline(sigma**2, ls="--", color="C1", label=f"sigma^2 (spectral tail) = {sigma**2:.3g}")
    if cv_steps > 0:
        ax.axvline(1.0 / (lr * cv_steps), ls=":", color="C0",
                   label=f"1/(lr T), T = {cv_steps} (recommended): fitted to the right")
    ax.set_xlabel("lambda_i (eigenvalue of K/n)")
    ax.set_ylabel("squared residual coordinate")
    ax.set_title("residual y - f_0 over the eigenvectors of the eNTK")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
