"""transferscope.dino: distribution-informed neural networks (DINO-INIT / DINO-TRAIN) for
domain-adaptation regression, their baselines and offline benchmarks (see docs/dino.md)."""

from transferscope.dino.estimator import DINORegressor
from transferscope.dino.kernels import nngp_kernel, ntk_kernel
from transferscope.dino.mmd import mmd_squared

__all__ = ["DINORegressor", "mmd_squared", "nngp_kernel", "ntk_kernel"]
