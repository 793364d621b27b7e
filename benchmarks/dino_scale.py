"""DINO fit+predict time and peak memory at 2k / 5k / 20k source points, against two baselines.

* ``loop``: the source-source block of the DINO training kernel assembled entry by entry in
  Python loops (each pair's distribution factor ``alpha_a(x)^T G_ab alpha_b(x')`` as its own
  small product, the way the authors' released code computes it), with the fitted DINO model.
  It is timed on ``--loop-rows`` rows and scaled to all rows (``~``); it is a lower bound for
  that baseline: no fit, no solve.
* ``sklearn``: ``GaussianProcessRegressor`` on the pooled data with a fixed RBF + white kernel
  (no hyper-parameter search, so it is one Cholesky). At 20k it would need an n x n float64
  matrix (3.2 GB per copy) and ~n^3/3 flops: it is extrapolated from 5k (cubic), marked ``~``.

Each measurement runs in a forked child; peak memory is the child's peak RSS above its start.
Usage: ``python benchmarks/dino_scale.py [--sizes 2000,5000,20000] [--steps 30]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np
import psutil
import torch

from transferscope.dino import DINORegressor
from transferscope.dino.datasets import synthetic_task

N_TARGET, N_UNLABELLED, N_TEST, N_BASE = 100, 1000, 1000, 2000
THREADS = [2]


def _problem(n_source: int, seed: int = 0):
    task = synthetic_task("covariate", 1.0, dim=6, n=max(n_source, N_UNLABELLED + N_TEST + N_TARGET),
                          seed=seed)
    Xt, yt = task.Xt, task.yt
    return (task.Xs[:n_source], task.ys[:n_source], Xt[:N_TARGET], yt[:N_TARGET],
            Xt[N_TARGET:N_TARGET + N_UNLABELLED], Xt[-N_TEST:], yt[-N_TEST:])


def _dino(n_source: int, steps: int, loop_rows: int) -> dict[str, float]:
    """DINO fit + predict; then, on the fitted model, the loop baseline's per-row kernel cost."""
    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(n_source)
    t0 = time.perf_counter()
    model = DINORegressor(n_base=N_BASE, n_steps=steps).fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    pred = model.predict(Xq)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    X_train = np.vstack([Xs, Xt])
    t1 = time.perf_counter()
    _loop_kernel(model, Xs[:loop_rows], 0, X_train, 0)
    per_row = (time.perf_counter() - t1) / loop_rows
    return {"seconds": seconds, "peak": peak, "mae": float(np.abs(pred - yq).mean()),
            "loop_seconds": per_row * len(X_train), "exact": model.exact_}


def _loop_kernel(model: DINORegressor, X1, a, X2, b) -> np.ndarray:
    """The DINO kernel, one entry at a time (Python loops over both point sets)."""
    f = model.factor_
    with torch.no_grad():
        A1 = f.weights(torch.from_numpy(X1), a).numpy()
        A2 = f.weights(torch.from_numpy(X2), b).numpy()
        k = model._k(torch.from_numpy(X1), torch.from_numpy(X2)).numpy() * model.amplitude_
        R = [f.factor_source.numpy(), f.factor_target.numpy()]
    G = {(p, q): R[p] @ R[q].T for p in (0, 1) for q in (0, 1)}
    norm1 = [np.sqrt(A1[i] @ G[a, a] @ A1[i]) for i in range(len(X1))]
    norm2 = [np.sqrt(A2[j] @ G[b, b] @ A2[j]) for j in range(len(X2))]
    out = np.empty((len(X1), len(X2)))
    for i in range(len(X1)):
        left = A1[i] @ G[a, b]
        for j in range(len(X2)):
            out[i, j] = k[i, j] * (left @ A2[j]) / (norm1[i] * norm2[j])
    return out


def _sklearn(n_source: int) -> float:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel

    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(n_source)
    gp = GaussianProcessRegressor(RBF(2.0) + WhiteKernel(0.05), optimizer=None, normalize_y=True)
    gp.fit(np.vstack([Xs, Xt]), np.r_[ys, yt])
    return float(np.abs(gp.predict(Xq) - yq).mean())


def _child(job, args, queue) -> None:
    torch.set_num_threads(THREADS[0])
    start_rss = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    result = job(*args)
    if not isinstance(result, dict):
        result = {"mae": result}
    result.setdefault("seconds", time.perf_counter() - t0)
    peak = result.pop("peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    result["mib"] = max(peak - start_rss, 0) / 2**20
    queue.put(result)


def measure(job, *args) -> dict:
    """Seconds, peak MiB above start and MAE of ``job(*args)`` in a fresh forked child."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(job, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,5000,20000")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--loop-rows", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy box)")
    args = parser.parse_args()
    THREADS[0] = args.threads
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'n_source':>8} | {'DINO s':>8} {'MiB':>7} {'MAE':>6} | {'loop s':>9} {'x':>7} | "
          f"{'sklearn s':>9} {'MiB':>7} {'x':>7}")
    sk_ref = None
    for n in sizes:
        dino = measure(_dino, n, args.steps, min(args.loop_rows, n))
        if n <= 5000:
            sk = measure(_sklearn, n)
            sk_ref, sk_mark = (n, sk["seconds"], sk["mib"]), " "
        else:
            n0, s0, mb0 = sk_ref
            sk, sk_mark = {"seconds": s0 * (n / n0) ** 3, "mib": mb0 * (n / n0) ** 2}, "~"
        loop_x = dino["loop_seconds"] / dino["seconds"]
        print(f"{n:>8} | {dino['seconds']:8.1f} {dino['mib']:7.0f} {dino['mae']:6.3f} | "
              f"~{dino['loop_seconds']:8.1f} {loop_x:6.1f}x | "
              f"{sk_mark}{sk['seconds']:8.1f} {sk_mark}{sk['mib']:6.0f} "
              f"{sk['seconds'] / dino['seconds']:6.3f}x  (exact solve: {dino['exact']})", flush=True)
    print("x = baseline time / DINO time; ~ = extrapolated (see the module docstring)")


if __name__ == "__main__":
    main()
