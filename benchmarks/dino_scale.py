"""DINO with many source rows: fit + predict seconds, peak memory and accuracy, end to end,
against what a user would pick instead; and the Nystrom posterior against the exact one.

Problem: the synthetic concept-shift task (``datasets.synthetic_task("concept", 1.0, dim=6)``:
the target's labelling function is tilted, so pooling is wrong), ``n`` source rows, 50 labelled
target rows, 1000 unlabelled target inputs, 1000 target test rows; a new draw per seed.

Methods (``--methods``), each timed end to end (fit + predict, everything it needs):

* ``dino``: ``DINORegressor()`` with its defaults: hyper-parameters on 512 source rows and the
  labelled target rows, posterior on all rows (exact up to 10,000 training rows, Nystrom / FITC
  with 3,000 inducing points above). Its cost estimate (``cost.estimate_cost``, said before a
  fit starts) is recorded beside the measurement.
* ``dino-exact``, ``dino-nystrom``: the same with ``posterior="exact"`` (Cholesky on all rows)
  or ``"nystrom"``: the exact reference and the approximation compared (mean difference, std
  ratio, MAE) at sizes where both run.
* ``sklearn-same``: scikit-learn's ``GaussianProcessRegressor`` with DINO's fitted kernel (a
  scikit-learn ``Kernel`` computing the same entries, domain as an extra column), per-row noise
  as ``alpha``, ``optimizer=None``: the exact posterior a scikit-learn user gets with the same
  kernel. Its time excludes the DINO fit that produced the kernel (shown in ``dino``).
* ``sklearn-ard``: scikit-learn's GP with ``ConstantKernel * RBF(ARD) + WhiteKernel`` on the
  pooled rows with a domain indicator column, its own hyper-parameter search (L-BFGS, 1 start).
* ``gpytorch-exact``: GPyTorch ``ExactGP`` (``ConstantMean``, ``ScaleKernel(RBF(ARD))``) on the
  pooled rows with a domain indicator, 50 Adam steps at learning rate 0.1 (GPyTorch's tutorial
  recipe), then the predictive mean and variance.
* ``gpytorch-sgpr``: GPyTorch's scalable variant, SGPR (``InducingPointKernel``, 500 inducing
  points initialised at random rows), same kernel and recipe.
* ``authors``: the authors' released algorithm (``AuthorsDINO``, float64 so that it runs).

Each (method, n, seed) runs in a forked child (peak memory = its peak RSS above its start) and
is appended to ``--runs`` (JSON lines) as soon as it finishes: an interrupted run resumes, and
``--report`` tabulates mean ± sd over seeds. Each line records the UTC time and load average.
GPyTorch is a benchmark-only import (``pip install gpytorch``), not a dependency.
Usage: ``python benchmarks/dino_scale.py --sizes 2000,10000 --methods dino,dino-exact --seeds
0,1,2`` then ``python benchmarks/dino_scale.py --report``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path
from queue import Empty

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from transferscope.dino import AuthorsDINO, DINORegressor  # noqa: E402
from transferscope.dino.cost import estimate_cost  # noqa: E402
from transferscope.dino.datasets import synthetic_task  # noqa: E402

N_TARGET, N_UNLABELLED, N_TEST = 50, 1000, 1000
Z90 = 1.6448536269514722
RUNS = Path(__file__).parent / "results" / "dino_scale-runs.jsonl"


def _problem(n_source: int, seed: int):
    task = synthetic_task("concept", 1.0, dim=6,
                          n=max(n_source, N_TARGET + N_UNLABELLED + N_TEST), seed=seed)
    Xt, yt = task.Xt, task.yt
    return (task.Xs[:n_source], task.ys[:n_source], Xt[:N_TARGET], yt[:N_TARGET],
            Xt[N_TARGET:N_TARGET + N_UNLABELLED], Xt[-N_TEST:], yt[-N_TEST:])


def _scores(pred, std, yq) -> dict:
    err = np.abs(np.asarray(pred) - yq)
    return {"mae": float(err.mean()), "coverage90": float((err <= Z90 * np.asarray(std)).mean()),
            "pred": np.asarray(pred).round(6).tolist(), "std": np.asarray(std).round(6).tolist()}


def _dino(n: int, seed: int, posterior: str = "auto") -> dict:
    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(n, seed)
    model = DINORegressor(posterior=posterior, random_state=seed)
    estimate = estimate_cost(model, len(Xs), len(Xt), Xs.shape[1])
    t0 = time.perf_counter()
    model.fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    pred, std = model.predict(Xq, return_std=True)
    return {"seconds": time.perf_counter() - t0, "posterior": model.method_,
            "estimate_seconds": estimate.seconds, "estimate_gib": estimate.peak_gib,
            "lambda": model.lambda_, **_scores(pred, std, yq)}


def _dino_exact(n: int, seed: int) -> dict:
    return _dino(n, seed, "exact")


def _dino_nystrom(n: int, seed: int) -> dict:
    return _dino(n, seed, "nystrom")


class _SameKernel:
    """A fitted DINO kernel as a scikit-learn ``Kernel`` (last column: 0 source, 1 target)."""

    @staticmethod
    def build(model):
        from sklearn.gaussian_process.kernels import Kernel

        class DinoKernel(Kernel):
            def __init__(self):
                super().__init__()

            def __call__(self, X, Y=None, eval_gradient=False):
                Y = X if Y is None else Y
                A, B = torch.from_numpy(np.asarray(X)), torch.from_numpy(np.asarray(Y))
                with torch.no_grad():
                    da, db = A[:, -1].long(), B[:, -1].long()
                    K = model._gp_mixed(A[:, :-1], da, B[:, :-1], db)
                    K += model._mean_mixed(A[:, :-1], da) @ model._mean_mixed(B[:, :-1], db).T
                return K.numpy()

            def diag(self, X):
                A = torch.from_numpy(np.asarray(X))
                with torch.no_grad():
                    d = A[:, -1].long()
                    H = model._mean_mixed(A[:, :-1], d)
                    return (model._gp_diag_mixed(A[:, :-1], d) + (H * H).sum(1)).numpy()

            def is_stationary(self):
                return False

        return DinoKernel()


def _sklearn_same(n: int, seed: int) -> dict:
    from sklearn.gaussian_process import GaussianProcessRegressor

    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(n, seed)
    # the fit only (its hyper-parameters); a cheap posterior, not timed
    model = DINORegressor(random_state=seed, posterior="nystrom", n_inducing=50)
    model.fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    X = np.c_[np.vstack([Xs, Xt]), np.r_[np.zeros(len(Xs)), np.ones(len(Xt))]]
    y = (np.r_[ys, yt] - model.y_mean_[0]) / model.y_scale_[0]
    alpha = np.r_[np.full(len(Xs), model.noise_source_), np.full(len(Xt), model.noise_target_)]
    t0 = time.perf_counter()
    gp = GaussianProcessRegressor(_SameKernel.build(model), alpha=alpha, optimizer=None)
    gp.fit(X, y)
    mean, std = gp.predict(np.c_[Xq, np.ones(len(Xq))], return_std=True)
    seconds = time.perf_counter() - t0
    pred = mean * model.y_scale_[0] + model.y_mean_[0]
    std = np.sqrt(std**2 + model.noise_target_) * model.y_scale_[0]
    return {"seconds": seconds, **_scores(pred, std, yq)}


def _pooled(n: int, seed: int):
    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(n, seed)
    X = np.c_[np.vstack([Xs, Xt]), np.r_[np.zeros(len(Xs)), np.ones(len(Xt))]]
    return X, np.r_[ys, yt], np.c_[Xq, np.ones(len(Xq))], yq


def _sklearn_ard(n: int, seed: int) -> dict:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    X, y, Xq, yq = _pooled(n, seed)
    t0 = time.perf_counter()
    kernel = ConstantKernel(1.0) * RBF(np.ones(X.shape[1])) + WhiteKernel(0.05)
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed).fit(X, y)
    mean, std = gp.predict(Xq, return_std=True)
    return {"seconds": time.perf_counter() - t0, **_scores(mean, std, yq)}


def _gpytorch(n: int, seed: int, inducing: int = 0) -> dict:
    import gpytorch

    X, y, Xq, yq = _pooled(n, seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    mu, sd = y.mean(), y.std()
    train_x, train_y = torch.from_numpy(X).float(), torch.from_numpy((y - mu) / sd).float()

    class Model(gpytorch.models.ExactGP):
        def __init__(self, likelihood):
            super().__init__(train_x, train_y, likelihood)
            self.mean_module = gpytorch.means.ConstantMean()
            base = gpytorch.kernels.ScaleKernel(
                gpytorch.kernels.RBFKernel(ard_num_dims=train_x.shape[1]))
            if inducing:
                rows = torch.randperm(len(train_x))[:inducing]
                base = gpytorch.kernels.InducingPointKernel(
                    base, inducing_points=train_x[rows].clone(), likelihood=likelihood)
            self.covar_module = base

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(x),
                                                             self.covar_module(x))

    likelihood = gpytorch.likelihoods.GaussianLikelihood()
    model = Model(likelihood)
    model.train()
    likelihood.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    for _ in range(50):
        optimiser.zero_grad()
        loss = -mll(model(train_x), train_y)
        loss.backward()
        optimiser.step()
    model.eval()
    likelihood.eval()
    with torch.no_grad(), gpytorch.settings.fast_pred_var():
        out = likelihood(model(torch.from_numpy(Xq).float()))
        mean, var = out.mean.double().numpy(), out.variance.double().numpy()
    return {"seconds": time.perf_counter() - t0,
            **_scores(mean * sd + mu, np.sqrt(var) * sd, yq)}


def _gpytorch_exact(n: int, seed: int) -> dict:
    return _gpytorch(n, seed)


def _gpytorch_sgpr(n: int, seed: int) -> dict:
    return _gpytorch(n, seed, inducing=500)


def _authors(n: int, seed: int) -> dict:
    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(n, seed)
    t0 = time.perf_counter()
    model = AuthorsDINO(dtype="float64", random_state=seed).fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    pred, std = model.predict(Xq, return_std=True)
    return {"seconds": time.perf_counter() - t0, **_scores(pred, std, yq)}


METHODS = {"dino": _dino, "dino-exact": _dino_exact, "dino-nystrom": _dino_nystrom,
           "sklearn-same": _sklearn_same,
           "sklearn-ard": _sklearn_ard, "gpytorch-exact": _gpytorch_exact,
           "gpytorch-sgpr": _gpytorch_sgpr, "authors": _authors}


def _child(job, args, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    start_rss = psutil.Process().memory_info().rss
    result = job(*args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["peak_gib"] = max(peak - start_rss, 0) / 2**30
    queue.put(result)


def measure(job, n: int, seed: int, threads: int) -> dict:
    """``job(n, seed)`` in a forked child; a child killed (e.g. out of memory) is reported."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(job, (n, seed), threads, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5.0)
            break
        except Empty:
            if not proc.is_alive():
                return {"failed": f"exit code {proc.exitcode} (-9: killed, e.g. out of memory)"}
    proc.join()
    return result


def _done(path: Path) -> dict[tuple, dict]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["method"], r["n"], r["seed"]): r for r in rows}


def report(path: Path) -> str:
    """Mean ± sd over seeds per (n, method); Nystrom vs exact per seed where both ran."""
    runs = _done(path)
    lines = ["| n source | method | seeds | seconds | peak GiB | MAE | 90% coverage | "
             "estimated s / GiB |", "|---|---|---|---|---|---|---|---|"]

    def ms(values, fmt):
        values = np.asarray(values, dtype=float)
        if len(values) == 1:
            return fmt.format(values[0])
        return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))}"

    keys = sorted({(n, m) for m, n, _ in runs}, key=lambda k: (k[0], list(METHODS).index(k[1])))
    for n, method in keys:
        rows = [r for (m, nn, _), r in sorted(runs.items()) if m == method and nn == n]
        ok = [r for r in rows if "failed" not in r]
        if not ok:
            lines.append(f"| {n:,} | {method} | {len(rows)} | failed: {rows[0]['failed']} "
                         "| | | | |")
            continue
        est = ""
        if "estimate_seconds" in ok[0]:
            est = (f"{ms([r['estimate_seconds'] for r in ok], '{:.0f}')} / "
                   f"{ms([r['estimate_gib'] for r in ok], '{:.1f}')}")
        label = method + (f" ({ok[0]['posterior']})" if "posterior" in ok[0] else "")
        lines.append(f"| {n:,} | {label} | {len(ok)} | {ms([r['seconds'] for r in ok], '{:.1f}')}"
                     f" | {ms([r['peak_gib'] for r in ok], '{:.2f}')} | "
                     f"{ms([r['mae'] for r in ok], '{:.4f}')} | "
                     f"{ms([r['coverage90'] for r in ok], '{:.3f}')} | {est} |")
    lines += ["", "Nystrom posterior against the exact one (dino-exact), same seed:",
              "| n source | seed | max abs mean difference | MAE exact / Nystrom | "
              "std ratio median [min, max] |", "|---|---|---|---|---|"]
    for (m, n, seed), r in sorted(runs.items()):
        exact = runs.get(("dino-exact", n, seed))
        if m not in ("dino", "dino-nystrom") or exact is None or "failed" in r or (
                "failed" in exact) or r.get("posterior") != "nystrom":
            continue
        diff = np.abs(np.array(r["pred"]) - np.array(exact["pred"])).max()
        ratio = np.array(r["std"]) / np.array(exact["std"])
        lines.append(f"| {n:,} | {seed} | {diff:.2e} | {exact['mae']:.4f} / {r['mae']:.4f} | "
                     f"{np.median(ratio):.3f} [{ratio.min():.3f}, {ratio.max():.3f}] |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000")
    parser.add_argument("--methods", default="dino")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--report", action="store_true", help="Print the tables and stop.")
    args = parser.parse_args()
    if args.report:
        print(report(args.runs))
        return
    done = _done(args.runs)
    for n in (int(v) for v in args.sizes.split(",")):
        for method in args.methods.split(","):
            for seed in (int(v) for v in args.seeds.split(",")):
                if (method, n, seed) in done:
                    continue
                started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
                load = os.getloadavg()[0]
                result = measure(METHODS[method], n, seed, args.threads)
                row = {"method": method, "n": n, "seed": seed, "utc": started,
                       "load": round(load, 2), "threads": args.threads,
                       "command": " ".join(sys.argv), **result}
                with open(args.runs, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{method} n={n} seed={seed}: "
                      + ", ".join(f"{k} {v:.4g}" for k, v in result.items()
                                  if isinstance(v, float)), flush=True)


if __name__ == "__main__":
    main()
