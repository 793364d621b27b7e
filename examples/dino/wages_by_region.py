"""DINO at 20 labels against what a practitioner tries first, on CPS 1988 wages: learn the South
from the other regions with 20 labelled Southern workers.

Run: python examples/dino/wages_by_region.py   (about a minute on 2 cores)
"""

import numpy as np

from transferscope.dino import DINORegressor, PooledRidge, TargetOnlyGP
from transferscope.dino.datasets import cps1988_south, split_task

Z90 = 1.6448536269514722  # a central 90% interval is mean +/- Z90 std


def main() -> None:
    split = split_task(cps1988_south(), seed=0, n_labelled=20, max_source=500, max_test=1000)
    for name, model in [("DINO (default)", DINORegressor()),
                        ("pooled ridge + indicator", PooledRidge()),
                        ("target-only GP", TargetOnlyGP())]:
        model.fit(split.Xs, split.ys, Xt=split.Xt, yt=split.yt, Xu=split.Xtest)
        mean, std = model.predict(split.Xtest, return_std=True)
        err = np.abs(mean - split.ytest)
        print(f"{name:25s} MAE {err.mean():.3f} log-wage, "
              f"90% interval coverage {(err <= Z90 * std).mean():.0%}")


if __name__ == "__main__":
    main()
