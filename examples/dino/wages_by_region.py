"""DINO-TRAIN vs a target-only GP on CPS 1988 wages: learn the South from the other regions.

Run: python examples/dino/wages_by_region.py   (about a minute on 2 cores)
"""

import numpy as np

from transferscope.dino import DINORegressor
from transferscope.dino.baselines import TargetOnlyGP
from transferscope.dino.datasets import cps1988_south, split_task


def main() -> None:
    split = split_task(cps1988_south(), seed=0, n_labelled=100, max_source=300, max_test=1000)
    for name, model in [("DINO-TRAIN", DINORegressor(kernel="ntk")),
                        ("target-only GP", TargetOnlyGP())]:
        model.fit(split.Xs, split.ys, Xt=split.Xt, yt=split.yt, Xu=split.Xtest)
        mean, std = model.predict(split.Xtest, return_std=True)
        mae = np.abs(mean - split.ytest).mean()
        inside = (np.abs(mean - split.ytest) < 1.96 * std).mean()
        print(f"{name:15s} MAE {mae:.3f} log-wage, 95% interval coverage {inside:.0%}")


if __name__ == "__main__":
    main()
