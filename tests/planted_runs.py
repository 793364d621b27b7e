"""A kernel run folder with a planted spectrum, for tests of what ``ntk stop`` writes and
what reads it (the command, the demo's stop paragraphs)."""

from pathlib import Path

import numpy as np

from transferscope.ntk.rundir import save_kernel_run


def save_polynomial_decay_run(path: Path, n: int = 24, seed: int = 0) -> Path:
    """A run of ``n`` examples: K = n Q diag(i^-1.5) Q^T for a random orthogonal Q, labels
    +-1 (half each), f_0 = 0.3 y + noise of sd 0.5. Returns ``path``."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    labels = np.repeat([1.0, -1.0], n // 2)
    save_kernel_run(path, n * (q * np.arange(1, n + 1) ** -1.5) @ q.T,
                    0.3 * labels + 0.5 * rng.standard_normal(n), labels,
                    [f"w{i}" for i in range(n)], {"n": n})
    return path
