"""DINO fit+predict time and peak memory at 2k / 5k / 20k source points, against two baselines.

* ``DINO``: the default path, conjugate gradients on the exact kernel with a Nystrom
  preconditioner above ``exact_max`` (3000) training points. Up to ``--compare-max`` source
  points it is also run with the Cholesky posterior (same fit, same seed: the fit does not
  depend on the solver), and the two sets of predictions are compared (accuracy of the
  approximation: mean exact to the CG tolerance, std from the 256 most correlated points).
* ``loop``: the training kernel assembled entry by entry in Python loops (each pair's
  distribution factor ``alpha_a(x)^T G_ab alpha_b(x')`` as its own small product, the way the
  authors' released code computes it), with the fitted DINO model. It runs rows for
  ``--loop-seconds`` and is extrapolated to all rows (``~``); it is a lower bound for that
  baseline: no fit, no solve.
* ``sklearn``: ``GaussianProcessRegressor`` on the pooled data with a fixed RBF + white kernel
  (no hyper-parameter search, so it is one Cholesky). Above ``--sklearn-max`` it is not run: it
  needs several n x n float64 copies (3.2 GB each at 20k) and ~n^3/3 flops; the line says so.

Each measurement runs in a forked child; peak memory is the child's peak RSS above its start.
``OMP_WAIT_POLICY=PASSIVE`` is set before torch loads (ours): on a shared 2-core machine,
spinning OpenMP threads made small tensor operations up to 10x slower in our measurements.
Usage: ``python benchmarks/dino_scale.py [--sizes 2000,5000,20000] [--steps 10]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time
from queue import Empty

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from transferscope.dino import DINORegressor  # noqa: E402
from transferscope.dino.datasets import synthetic_task  # noqa: E402

N_TARGET, N_UNLABELLED, N_TEST, N_BASE = 100, 1000, 1000, 2000
THREADS = [2]


def _problem(n_source: int, seed: int = 0):
    task = synthetic_task("covariate", 1.0, dim=6, n=max(n_source, N_UNLABELLED + N_TEST + N_TARGET),
                          seed=seed)
    Xt, yt = task.Xt, task.yt
    return (task.Xs[:n_source], task.ys[:n_source], Xt[:N_TARGET], yt[:N_TARGET],
            Xt[N_TARGET:N_TARGET + N_UNLABELLED], Xt[-N_TEST:], yt[-N_TEST:])


def _dino(n_source: int, steps: int, exact: bool, loop_seconds: float) -> dict:
    """DINO fit + predict; then, on the fitted model, the loop baseline's per-row kernel cost."""
    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(n_source)
    t0 = time.perf_counter()
    model = DINORegressor(n_base=N_BASE, n_steps=steps, exact_max=10**9 if exact else 0)
    model.fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    pred, std = model.predict(Xq, return_std=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"seconds": seconds, "peak": peak, "mae": float(np.abs(pred - yq).mean()),
              "pred": pred, "std": std, "cg": getattr(model, "cg_iterations_", 0)}
    if loop_seconds > 0:
        result["loop_seconds"], result["loop_rows"] = _loop_seconds(
            model, np.vstack([Xs, Xt]), loop_seconds)
    return result


def _loop_seconds(model: DINORegressor, X: np.ndarray, budget: float) -> tuple[float, int]:
    """Seconds to assemble the n x n DINO kernel of ``X`` one entry at a time in Python loops
    (every point treated as a source point): the per-point norms in full, then rows for
    ``budget`` seconds, extrapolated to all n rows. Returns (seconds, rows timed)."""
    f = model.factor_
    t0 = time.perf_counter()
    with torch.no_grad():
        A = f.weights(torch.from_numpy(X), 0).numpy()
        R = f.factor_source.numpy()
    G = R @ R.T
    norms = [np.sqrt(A[i] @ G @ A[i]) for i in range(len(X))]
    setup = time.perf_counter() - t0
    t1, rows = time.perf_counter(), 0
    while rows < len(X) and time.perf_counter() - t1 < budget:
        with torch.no_grad():
            k = model._k(torch.from_numpy(X[rows:rows + 1]), torch.from_numpy(X)).numpy()
        left = A[rows] @ G
        out = np.empty(len(X))
        for j in range(len(X)):
            out[j] = model.amplitude_ * k[0, j] * (left @ A[j]) / (norms[rows] * norms[j])
        rows += 1
    return setup + (time.perf_counter() - t1) / rows * len(X), rows


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
    """Seconds, peak MiB above start and MAE of ``job(*args)`` in a fresh forked child.

    A child that dies without a result (killed for memory: exit -9) ends the run with one line
    naming the job and its exit code, instead of waiting forever on the queue.
    """
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(job, args, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5.0)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"error: {job.__name__}{args} died with exit code "
                                 f"{proc.exitcode} before reporting (-9: killed, e.g. out of "
                                 "memory)") from None
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,5000,20000")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--loop-seconds", type=float, default=60.0)
    parser.add_argument("--compare-max", type=int, default=5000)
    parser.add_argument("--sklearn-max", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    THREADS[0] = args.threads
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"started {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, torch threads {args.threads}, "
          f"{N_BASE} base points per domain, {N_TARGET} labelled "
          f"target, {N_UNLABELLED} unlabelled, {N_TEST} test points, {args.steps} Adam steps")
    print(f"{'n_source':>8} {'solver':>6} | {'DINO s':>7} {'MiB':>6} {'MAE':>6} | "
          f"{'loop s':>9} {'x':>7} | {'sklearn s':>9} {'MiB':>6} {'MAE':>6} {'x':>7}")
    for n in sizes:
        dino = measure(_dino, n, args.steps, False, args.loop_seconds)
        runs = [("CG", dino)]
        if n <= args.compare_max:
            runs.append(("exact", measure(_dino, n, args.steps, True, 0.0)))
        sk = measure(_sklearn, n) if n <= args.sklearn_max else None
        for solver, run in runs:
            line = f"{n:>8} {solver:>6} | {run['seconds']:7.1f} {run['mib']:6.0f} {run['mae']:6.3f} | "
            if "loop_seconds" in run:
                line += (f"~{run['loop_seconds']:8.0f} {run['loop_seconds'] / run['seconds']:6.1f}x"
                         f" | ")
            else:
                line += f"{'':>9} {'':>7} | "
            if sk is None:
                line += f"not run: n^2 float64 = {8 * n * n / 2**30:.1f} GiB per copy, n^3 flops"
            else:
                line += (f"{sk['seconds']:9.1f} {sk['mib']:6.0f} {sk['mae']:6.3f} "
                         f"{sk['seconds'] / run['seconds']:6.3f}x")
            print(line, flush=True)
        print(f"{'':>8} CG iterations {dino['cg']}, loop timed on {dino['loop_rows']} rows",
              flush=True)
        if len(runs) == 2:
            exact = runs[1][1]
            ratio = dino["std"] / exact["std"]
            print(f"{'':>8} CG vs exact: max |mean diff| "
                  f"{np.abs(dino['pred'] - exact['pred']).max():.2e}, "
                  f"predictive std ratio median {np.median(ratio):.3f} "
                  f"[min {ratio.min():.3f}, max {ratio.max():.3f}]", flush=True)
    print("x = baseline time / DINO time; ~ = extrapolated (see the module docstring)")


if __name__ == "__main__":
    main()
