"""DINO fit+predict time, peak memory and MAE at 2k / 5k / 20k source points, against baselines,
on a covariate-shift task (pooling is already right there) and a concept-shift task (the target's
labelling function differs: where transfer must be selective).

* ``DINO``: default settings (held-out early stopping), ``n_base`` 2000; conjugate gradients on
  the exact kernel with a Nystrom preconditioner above ``exact_max`` (3000) training points. Up
  to ``--compare-max`` source points also with the Cholesky posterior (same fit), and the two
  sets of predictions are compared.
* ``authors``: the authors' released algorithm (github junwu6/Distribution-Informed-NN,
  re-implemented here, not copied): their weights computed in a Python loop over points (one
  scorer evaluation on ``[phi(x_i), phi(B)]`` per point, ELU, divided by the mean), the factor's
  blocks by two matrix products ``W_a G_ab W_b^T``, NNGP of depth 6 (W_std 1.5, b_std 0.05),
  5,000 base points, 10 Adam steps at lr 0.1 on source batches of 500, float32, and the
  prediction conditioned on the last batch of 500 source points and the labelled target (as
  their ``inference``). Two timings: their end-to-end fit + predict, and ``loop kernel``: their
  loop + products building the full (n_source + n_target) kernel, the baseline for DINO's kernel
  assembly (it replaces the n^2 Python loop of the first version, which was ~30x slower than
  their design).
* ``ARD GP``: scikit-learn's ``GaussianProcessRegressor`` on the pooled data with a constant x
  ARD-RBF + white kernel and its hyper-parameter search (L-BFGS, 1 start), up to ``--ard-max``.
* ``pooled GP (fixed)``: the same on a fixed RBF + white kernel (one Cholesky), up to
  ``--sklearn-max``; ``target-only GP``: ``TargetOnlyGP`` on the 100 labelled target points.

``--solvers 20000,50000`` runs only the solver comparison instead (``_solvers``): the project's
``scalable.py`` (landmark preconditioner + CG) against GPyTorch's CG with its pivoted-Cholesky
preconditioner on the same lazy DINO kernel, timed in one process; it needs ``pip install
gpytorch``, which the product does not depend on (``scalable.py`` was faster: docs/dino.md).
``--seeds 0,1,2`` repeats every measurement per seed and prints mean and range.

Transductive, as in the accuracy benchmark: DINO receives 1000 unlabelled target inputs (not the
test inputs). Each measurement runs in a forked child; peak memory is the child's peak RSS above
its start. ``OMP_WAIT_POLICY=PASSIVE`` is set before torch loads (ours): on a shared 2-core
machine, spinning OpenMP threads made small tensor operations up to 10x slower.
Usage: ``python benchmarks/dino_scale.py [--tasks concept,covariate] [--sizes 2000,5000]
[--seeds 0,1,2] [--solvers 20000,50000]``.
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

from transferscope.dino import DINORegressor, TargetOnlyGP  # noqa: E402
from transferscope.dino.datasets import synthetic_task  # noqa: E402
from transferscope.dino.kernels import base_kernel  # noqa: E402

N_TARGET, N_UNLABELLED, N_TEST, N_BASE = 100, 1000, 1000, 2000
AUTHORS_BASE, AUTHORS_BATCH, AUTHORS_STEPS, AUTHORS_LR = 5000, 500, 10, 0.1
FIT_SOURCE = 2000  # source points the solver comparison fits DINO on (its kernel then spans all)
THREADS = [2]


def _problem(kind: str, n_source: int, seed: int):
    task = synthetic_task(kind, 1.0, dim=6, n=max(n_source, N_UNLABELLED + N_TEST + N_TARGET),
                          seed=seed)
    Xt, yt = task.Xt, task.yt
    return (task.Xs[:n_source], task.ys[:n_source], Xt[:N_TARGET], yt[:N_TARGET],
            Xt[N_TARGET:N_TARGET + N_UNLABELLED], Xt[-N_TEST:], yt[-N_TEST:])


def _dino(kind: str, n_source: int, seed: int, exact: bool) -> dict:
    """DINO (default settings, ``N_BASE`` base points) fit + predict."""
    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(kind, n_source, seed)
    t0 = time.perf_counter()
    model = DINORegressor(n_base=N_BASE, exact_max=10**9 if exact else 0, random_state=seed)
    model.fit(Xs, ys, Xt=Xt, yt=yt, Xu=Xu)
    pred, std = model.predict(Xq, return_std=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak": peak, "mae": float(np.abs(pred - yq).mean()),
            "pred": pred, "std": std, "cg": getattr(model, "cg_iterations_", 0),
            "steps": model.selected_steps_, "lambda": model.lambda_}


class _AuthorsDINO(torch.nn.Module):
    """The authors' model as their DINO.py computes it (float32; our re-implementation)."""

    def __init__(self, dim: int, base_s: torch.Tensor, base_t: torch.Tensor, kernel):
        super().__init__()
        self.feat = torch.nn.Linear(dim, 8)
        self.w = torch.nn.ModuleList([torch.nn.Linear(16, 1), torch.nn.Linear(16, 1)])
        self.noise = torch.nn.Parameter(torch.ones(2))
        self.base = [base_s, base_t]
        both = torch.cat([base_s, base_t])
        G = kernel(both.double(), both.double()).float()
        m = len(base_s)
        self.G = {(0, 0): G[:m, :m], (1, 1): G[m:, m:], (0, 1): G[:m, m:], (1, 0): G[m:, :m]}

    def weights(self, X: torch.Tensor, a: int) -> torch.Tensor:
        """One scorer evaluation per point, in a Python loop, as theirs."""
        fb = self.feat(self.base[a])
        fx = self.feat(X)
        rows = []
        for i in range(len(X)):
            z = torch.nn.functional.elu(self.w[a](torch.cat([fx[i].repeat(len(fb), 1), fb], 1)))
            rows.append((z / z.mean()).T)
        return torch.cat(rows)

    def factor(self, X1, a, X2, b) -> torch.Tensor:
        return self.weights(X1, a) @ self.G[(a, b)] @ self.weights(X2, b).T

    def blocks(self, k, Xs, Xt):
        n = self.noise.clamp(1e-5, 1.0)
        K_ss = k(Xs, Xs) * self.factor(Xs, 0, Xs, 0) + n[0] * torch.eye(len(Xs))
        K_tt = k(Xt, Xt) * self.factor(Xt, 1, Xt, 1) + n[1] * torch.eye(len(Xt))
        return K_ss, k(Xs, Xt) * self.factor(Xs, 0, Xt, 1), K_tt


def _authors(kind: str, n_source: int, seed: int) -> dict:
    """The authors' algorithm end to end: fit (10 steps, batches of 500) and predict."""
    Xs, ys, Xt, yt, Xu, Xq, yq = (torch.from_numpy(a).float()
                                  for a in _problem(kind, n_source, seed))
    t0 = time.perf_counter()
    nngp = base_kernel("nngp", 6, 1.5, 0.05)

    def k(A, B):
        return nngp(A.double(), B.double()).float()

    torch.manual_seed(seed)
    model = _AuthorsDINO(Xs.shape[1], Xs[:AUTHORS_BASE], Xu[:AUTHORS_BASE], nngp)
    opt = torch.optim.Adam(model.parameters(), lr=AUTHORS_LR)
    rng = np.random.default_rng(seed)
    for _ in range(AUTHORS_STEPS):
        idx = torch.from_numpy(rng.choice(len(Xs), min(AUTHORS_BATCH, len(Xs)), replace=False))
        xb, yb = Xs[idx], ys[idx, None]
        K_ss, K_st, K_tt = model.blocks(k, xb, Xt)
        inv = torch.inverse(K_ss)
        mu, cov = K_st.T @ inv @ yb, K_tt - K_st.T @ inv @ K_st
        r = yt[:, None] - mu
        # the Gaussian likelihood (their code weights the log-determinant by 1/4; see docs)
        loss = torch.logdet(cov) / 2 + 0.5 * (r.T @ torch.linalg.solve(cov, r)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        K_ss, K_st, K_tt = model.blocks(k, xb, Xt)
        K = torch.cat([torch.cat([K_ss, K_st], 1), torch.cat([K_st.T, K_tt], 1)])
        K_star = torch.cat([k(Xq, xb) * model.factor(Xq, 1, xb, 0),
                            k(Xq, Xt) * model.factor(Xq, 1, Xt, 1)], 1)
        pred = (K_star @ torch.linalg.solve(K, torch.cat([yb, yt[:, None]])))[:, 0].numpy()
    return {"seconds": time.perf_counter() - t0, "mae": float(np.abs(pred - yq.numpy()).mean())}


def _authors_kernel(kind: str, n_source: int, seed: int) -> dict:
    """Their loop + two products building the full (n_source + n_target) training kernel."""
    Xs, ys, Xt, yt, Xu, Xq, yq = (torch.from_numpy(a).float()
                                  for a in _problem(kind, n_source, seed))
    nngp = base_kernel("nngp", 6, 1.5, 0.05)
    torch.manual_seed(seed)
    model = _AuthorsDINO(Xs.shape[1], Xs[:AUTHORS_BASE], Xu[:AUTHORS_BASE], nngp)
    t0 = time.perf_counter()
    with torch.no_grad():
        W = [model.weights(Xs, 0), model.weights(Xt, 1)]
        X = [Xs, Xt]
        blocks = [[nngp(X[a].double(), X[b].double()).float()
                   * (W[a] @ model.G[(a, b)] @ W[b].T) for b in (0, 1)] for a in (0, 1)]
        K = torch.cat([torch.cat(row, 1) for row in blocks])
    return {"seconds": time.perf_counter() - t0, "mae": float("nan"), "n": int(K.shape[0])}


def _ard(kind: str, n_source: int, seed: int) -> dict:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(kind, n_source, seed)
    t0 = time.perf_counter()
    kernel = ConstantKernel(1.0) * RBF(np.ones(Xs.shape[1])) + WhiteKernel(0.05)
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
    gp.fit(np.vstack([Xs, Xt]), np.r_[ys, yt])
    pred = gp.predict(Xq)
    return {"seconds": time.perf_counter() - t0, "mae": float(np.abs(pred - yq).mean())}


def _sklearn(kind: str, n_source: int, seed: int) -> dict:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel

    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(kind, n_source, seed)
    t0 = time.perf_counter()
    gp = GaussianProcessRegressor(RBF(2.0) + WhiteKernel(0.05), optimizer=None, normalize_y=True)
    gp.fit(np.vstack([Xs, Xt]), np.r_[ys, yt])
    pred = gp.predict(Xq)
    return {"seconds": time.perf_counter() - t0, "mae": float(np.abs(pred - yq).mean())}


def _target_only(kind: str, n_source: int, seed: int) -> dict:
    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(kind, n_source, seed)
    t0 = time.perf_counter()
    pred = TargetOnlyGP().fit(Xs, ys, Xt=Xt, yt=yt).predict(Xq)
    return {"seconds": time.perf_counter() - t0, "mae": float(np.abs(pred - yq).mean())}


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


class _Counted:
    """A row-block kernel whose products are counted (CG iterations of any solver)."""

    def __init__(self, blocks):
        self.blocks, self.products = blocks, 0

    def matmul(self, v: torch.Tensor) -> torch.Tensor:
        self.products += 1
        return self.blocks.matmul(v)


def _gpytorch_operator(kernel, counted):
    """The DINO kernel as a GPyTorch ``LinearOperator``: products from the same row blocks as
    ``scalable.py`` uses, rows for GPyTorch's pivoted Cholesky from ``kernel.entries``."""
    from linear_operator.operators import LinearOperator

    class DINOKernelOperator(LinearOperator):
        def __init__(self, X, *, kernel, counted):
            super().__init__(X, kernel=kernel, counted=counted)
            self.kernel, self.counted = kernel, counted

        def _matmul(self, rhs):
            return self.counted.matmul(rhs)

        def _size(self):
            return torch.Size((self.kernel.n, self.kernel.n))

        def _transpose_nonbatch(self):
            return self

        def _diagonal(self):
            return self.kernel.diagonal()

        def _get_indices(self, row_index, col_index, *batch_indices):
            rows, cols = torch.broadcast_tensors(row_index, col_index)
            unique, inverse = torch.unique(rows, return_inverse=True)
            return self.kernel.entries(unique, slice(None))[inverse, cols]

    return DINOKernelOperator(kernel.X, kernel=kernel, counted=counted)


def _solvers(kind: str, n_source: int, seed: int, ranks: list[int], cache_gib: float) -> dict:
    """``scalable.py`` against GPyTorch's CG on one fitted DINO kernel at ``n_source`` points.

    DINO is fitted (default settings, exact posterior) on the first ``FIT_SOURCE`` source points;
    its kernel on all ``n_source`` + 100 training points is the lazy ``LowRankProductKernel``
    (O(n r) memory), turned into row blocks kept in memory up to ``cache_gib``. Both solvers
    then solve ``(K + D) w = y`` to relative residual 1e-6 with products from those same blocks:
    the project's landmark (Nystrom, 1000 points) preconditioner and CG, and GPyTorch's CG
    (``linear_operator``) with its partial pivoted-Cholesky preconditioner of each rank in
    ``ranks`` (at most 1000 iterations, its default). Seconds are the preconditioner plus CG,
    after the shared kernel build. When the
    kernel does not fit the cache, one product is timed on a few row blocks and scaled, the
    preconditioners are built for real, and the totals are extrapolated with the CG iteration
    counts of a cached run (labelled so).
    """
    import gpytorch
    from linear_operator.operators import AddedDiagLinearOperator, DiagLinearOperator

    from transferscope.dino.scalable import IterativePosterior, landmarks

    Xs, ys, Xt, yt, Xu, Xq, yq = _problem(kind, n_source, seed)
    t0 = time.perf_counter()
    model = DINORegressor(n_base=N_BASE, random_state=seed, exact_max=10**9)
    model.fit(Xs[:FIT_SOURCE], ys[:FIT_SOURCE], Xt=Xt, yt=yt, Xu=Xu)
    out = {"fit": time.perf_counter() - t0, "n": n_source + len(Xt), "rows": []}
    with torch.no_grad():
        t0 = time.perf_counter()
        kernel = model.training_kernel(torch.from_numpy(Xs), torch.from_numpy(Xt))
        noise = torch.cat([torch.full((n_source,), model.noise_source_),
                           torch.full((len(Xt),), model.noise_target_)]).double()
        y = torch.from_numpy((np.r_[ys, yt] - model.y_mean_[0]) / model.y_scale_[0])[:, None]
        blocks = kernel.row_blocks(cache_gib * 2**30)
        out["build"] = time.perf_counter() - t0
        out["rank"], out["cached"] = kernel.E.shape[1], blocks.cached is not None
        counted = _Counted(blocks)
        if not out["cached"]:
            t0 = time.perf_counter()
            few = blocks.bounds[:4]
            for start, stop in few:
                blocks.rows(start, stop) @ y
            out["product"] = (time.perf_counter() - t0) * kernel.n / few[-1][1]

        def residual(w: torch.Tensor) -> float:
            return float((y - blocks.matmul(w) - noise[:, None] * w).norm() / y.norm())

        t0 = time.perf_counter()
        chosen = landmarks(kernel, model.landmark_pool(n_source, len(Xt)), model.n_inducing)
        K_nm = kernel.entries(slice(None), chosen)
        setup = time.perf_counter() - t0
        if out["cached"]:
            post = IterativePosterior(counted, K_nm, K_nm[chosen], noise, y, 1e-6)
            seconds, w_ours = time.perf_counter() - t0, post.weights
            out["rows"].append(("scalable.py (1000 landmarks)", seconds, setup, post.iterations,
                                residual(w_ours), 0.0))
        else:
            out["rows"].append(("scalable.py (1000 landmarks)", None, setup, None, None, None))
        for rank in ranks:
            counted.products = 0
            with (gpytorch.settings.max_cholesky_size(0),
                  gpytorch.settings.max_preconditioner_size(rank),
                  gpytorch.settings.min_preconditioning_size(0),
                  gpytorch.settings.preconditioner_tolerance(1e-10),
                  gpytorch.settings.cg_tolerance(1e-6),
                  gpytorch.settings.max_cg_iterations(1000)):
                operator = AddedDiagLinearOperator(_gpytorch_operator(kernel, counted),
                                                   DiagLinearOperator(noise))
                t0 = time.perf_counter()
                precondition = operator._solve_preconditioner()
                setup = time.perf_counter() - t0
                if not out["cached"]:
                    out["rows"].append((f"GPyTorch CG (pivoted Cholesky {rank})", None, setup,
                                        None, None, None))
                    continue
                w = operator._solve(y, precondition)
                seconds = time.perf_counter() - t0
            out["rows"].append((f"GPyTorch CG (pivoted Cholesky {rank})", seconds, setup,
                                counted.products - 1, residual(w),
                                float((w - w_ours).abs().max() / w_ours.abs().max())))
    out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def _print_solvers(kind: str, n: int, run: dict, iterations: dict) -> None:
    """One line per solver; for an uncached kernel, totals extrapolated from ``iterations``."""
    cache = ("cached" if run["cached"] else
             f"not cached: recomputed per product, one product measured {run['product']:.1f} s")
    print(f"{kind:>9} {n:>8} solvers: {run['n']} training points, embedding rank {run['rank']}, "
          f"DINO fit on {FIT_SOURCE} source points {run['fit']:.1f} s, lazy kernel + row blocks "
          f"{run['build']:.1f} s ({cache}), peak {run['mib']:.0f} MiB", flush=True)
    ours = run["rows"][0][1]
    for name, seconds, setup, iters, res, diff in run["rows"]:
        if seconds is not None:
            iterations[name] = iters
            print(f"{'':>19} {name:>36} | {seconds:8.1f} s (preconditioner {setup:.1f} s), "
                  f"{iters} CG iterations, residual {res:.1e}, max |w - w_ours|/max|w_ours| "
                  f"{diff:.1e}, time / scalable.py {seconds / ours:.2f}", flush=True)
        elif name in iterations:
            total = setup + iterations[name] * run["product"]
            print(f"{'':>19} {name:>36} | EXTRAPOLATED {total:8.0f} s = preconditioner "
                  f"{setup:.1f} s (measured) + {iterations[name]} iterations (as at the cached "
                  f"size; a lower bound) x {run['product']:.1f} s per product (measured)",
                  flush=True)
        else:
            print(f"{'':>19} {name:>36} | preconditioner {setup:.1f} s (measured); no cached "
                  "run to take an iteration count from", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="concept,covariate")
    parser.add_argument("--sizes", default="2000,5000")
    parser.add_argument("--seeds", default="0", help="data and model seeds, comma-separated")
    parser.add_argument("--compare-max", type=int, default=5000)
    parser.add_argument("--ard-max", type=int, default=5000)
    parser.add_argument("--sklearn-max", type=int, default=5000)
    parser.add_argument("--authors-max", type=int, default=10**9)
    parser.add_argument("--solvers", default="",
                        help="source sizes for the scalable.py vs GPyTorch comparison (e.g. "
                        "20000,50000); then only that comparison runs")
    parser.add_argument("--gpytorch-ranks", default="15,1000",
                        help="ranks of GPyTorch's pivoted-Cholesky preconditioner")
    parser.add_argument("--cache-gib", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    THREADS[0] = args.threads
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"started {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, torch threads {args.threads}, "
          f"DINO: defaults, {N_BASE} base points per domain; {N_TARGET} labelled target, "
          f"{N_UNLABELLED} unlabelled, {N_TEST} test points; seconds are fit + predict")
    if args.solvers:
        ranks = [int(r) for r in args.gpytorch_ranks.split(",")]
        for kind in args.tasks.split(","):
            iterations: dict[str, int] = {}
            for n in sorted(int(v) for v in args.solvers.split(",")):
                run = measure(_solvers, kind, n, seeds[0], ranks, args.cache_gib)
                _print_solvers(kind, n, run, iterations)
        return
    print(f"{'task':>9} {'n_source':>8} {'seed':>4} {'method':>22} | {'seconds':>8} {'MiB':>6} "
          f"{'MAE':>6} | note")
    results: dict[tuple, list[dict]] = {}
    for kind in args.tasks.split(","):
        for n in sizes:
            for seed in seeds:
                for name, run, note in _rows(kind, n, seed, args):
                    results.setdefault((kind, n, name), []).append(run)
                    print(f"{kind:>9} {n:>8} {seed:>4} {name:>22} | {run['seconds']:8.1f} "
                          f"{run['mib']:6.0f} {run['mae']:6.3f} | {note}", flush=True)
    if len(seeds) > 1:
        print(f"summary over seeds {args.seeds}: mean (min-max)")
        for (kind, n, name), runs in results.items():
            sec, mae = (np.array([r[key] for r in runs]) for key in ("seconds", "mae"))
            print(f"{kind:>9} {n:>8} {name:>22} | seconds {sec.mean():7.1f} ({sec.min():.1f}-"
                  f"{sec.max():.1f}) | MAE {mae.mean():.3f} ({mae.min():.3f}-{mae.max():.3f}), "
                  f"std {mae.std(ddof=1):.3f} | peak MiB {max(r['mib'] for r in runs):.0f}",
                  flush=True)


def _rows(kind: str, n: int, seed: int, args) -> list[tuple[str, dict, str]]:
    """Every method's measurement for one task, size and seed."""
    dino = measure(_dino, kind, n, seed, False)
    rows = [("DINO (CG)" if n + N_TARGET > 3000 else "DINO (exact)", dino,
             f"Adam steps kept {dino['steps']}, lambda {dino['lambda']:.3f}"
             + (f", CG iterations {dino['cg']}" if n + N_TARGET > 3000 else ""))]
    if n + N_TARGET > 3000 and n <= args.compare_max:
        exact = measure(_dino, kind, n, seed, True)
        ratio = dino["std"] / exact["std"]
        rows.append(("DINO (exact Cholesky)", exact,
                     f"CG vs exact: max |mean diff| "
                     f"{np.abs(dino['pred'] - exact['pred']).max():.1e}, std ratio "
                     f"median {np.median(ratio):.3f} [{ratio.min():.3f}, {ratio.max():.3f}]"))
    if n <= args.authors_max:
        loop = measure(_authors_kernel, kind, n, seed)
        rows.append(("authors' loop kernel", loop,
                     f"{loop['n']}^2 kernel only; {loop['seconds'] / dino['seconds']:.2f}x "
                     "DINO's fit + predict"))
        rows.append(("authors' algorithm", measure(_authors, kind, n, seed),
                     "10 steps, predicts from the last 500 source points"))
    if n <= args.ard_max:
        rows.append(("ARD GP (search)", measure(_ard, kind, n, seed), "pooled"))
    if n <= args.sklearn_max:
        rows.append(("pooled GP (fixed)", measure(_sklearn, kind, n, seed), "one Cholesky"))
    rows.append(("target-only GP", measure(_target_only, kind, n, seed), ""))
    return rows


if __name__ == "__main__":
    main()
