"""The eNTK engine on a Ray cluster: capture blocks, sketch rows and Gram block pairs as actor calls.

Why Ray: a user who outgrows one machine should run on an existing distributed engine, not on a
home-made one. The split is the local engine's own (:class:`~transferscope.ntk.engine_run.
KernelRun`): the examples are cut into ``block_size`` blocks; each block's gradient factors (or,
in sketch mode, its sketched rows) are computed by one worker; in exact mode every pair of
blocks ``(i, j), i <= j`` is then one more call whose float64 Gram block fills ``K[i, j]`` and,
mirrored, ``K[j, i]``. Each worker is a Ray actor holding its own model copy, built once from a
picklable model factory (:func:`prompt_task_factory` for the CLI's prompt tasks) or from the
caller's module placed in the object store; it runs on a GPU where the cluster has one.

Resume and faults (our choices): the driver writes every finished block to the kernel's work
directory in the local layout (``x-00000.pt`` ...) as it arrives, and the Gram accumulated so far
after every finished pair (``gram-ray.npy`` / ``gram-ray.json``: the per-pair split differs
from the local engine's super-blocks, so it has its own files and never misleads a local
resume). A worker that dies mid-call is restarted by Ray and the call retried (``max_retries``);
a driver that stops resumes from the files, so nothing finished is computed twice and the
capture blocks are shared with the local engine in both directions.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from transferscope.core.errors import (
    BackendError,
    EnvironmentProblem,
    TransferScopeError,
    input_error,
)
from transferscope.ntk.engine_capture import only_selected_trainable
from transferscope.ntk.engine_gram import gram_of_blocks
from transferscope.ntk.engine_run import (
    KernelRun,
    _block_to_state,
    _save_torch,
    _state_to_block,
    save_gram_progress,
)
from transferscope.ntk.engine_sketch import sketch_block

GRAM_STATE, GRAM_MATRIX = "gram-ray.json", "gram-ray.npy"
ModelFactory = Callable[[], tuple[torch.nn.Module, Callable]]


@dataclass(frozen=True)
class RayExecutor:
    """Where the kernel runs: a Ray cluster and how many workers to use on it.

    ``address``: ``None`` joins the Ray instance this process already started, or starts a local
    one; ``"auto"`` or ``"host:6379"`` joins a cluster started with ``ray start``; a
    ``ray://host:10001`` address goes through Ray Client. ``workers``: actors to start (default:
    the cluster's GPUs where it has any, otherwise its CPUs). ``model_factory``: a picklable
    function returning ``(model, output_fn)`` that each worker calls once; ``None`` ships the
    caller's model and output function through the object store instead.
    """

    address: str | None = None
    workers: int | None = None
    max_retries: int = 3
    model_factory: ModelFactory | None = None
    in_flight_per_worker: int = 2


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise EnvironmentProblem("executor 'ray': the ray package is not installed: expected "
                                 "pip install 'transferscope[ray]'") from exc
    return ray


def connect(address: str | None):
    """The ``ray`` module, connected to ``address`` (a local instance when None and none is up)."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise BackendError(f"ray cluster: address = {address!r}: cannot connect ({exc}); "
                           "expected a running cluster (ray start --head) or no address "
                           "for a local one") from exc
    return ray


def worker_count(ray, requested: int | None) -> tuple[int, float]:
    """(workers, GPUs per worker): one GPU each where the cluster has GPUs, else one CPU each."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    if requested is not None and requested < 1:
        raise input_error("ray executor", "workers", requested, "a positive integer")
    available = gpus if gpus else max(1, cpus)
    return (requested or available), (1.0 if gpus else 0.0)


def as_executor(executor: Any) -> RayExecutor:
    """``"ray"`` or a :class:`RayExecutor` (anything else is one clear error)."""
    if isinstance(executor, RayExecutor):
        return executor
    if executor == "ray":
        return RayExecutor()
    raise input_error("empirical_ntk", "executor", executor,
                      "'local', 'ray' or a transferscope.ntk.executor_ray.RayExecutor")


def kernel_run_type(executor: Any) -> Callable[..., KernelRun]:
    """The KernelRun constructor for ``executor`` (used by ``empirical_ntk_result``)."""
    return functools.partial(RayKernelRun, executor=as_executor(executor))


# ---------------------------------------------------------------------------- model factories
def _build_prompt_task(settings: dict) -> tuple[torch.nn.Module, Callable]:
    from transferscope.ntk.task import PromptTask

    task = PromptTask(**settings)
    return task.model, task.output_fn


def prompt_task_factory(task) -> ModelFactory | None:
    """A picklable factory rebuilding ``task`` (a PromptTask) on a worker from its model name.

    None when the task was built from an already loaded model (no name a worker could load).
    """
    if not isinstance(task.model_name, str | Path):
        return None
    settings = {"template": task.template, "label_words": list(task.label_words),
                "model": str(task.model_name), "readout": task.readout,
                "head_seed": task.head_seed, "word_prefix": task.word_prefix,
                "max_tokens": task.max_tokens, "dtype": task.model.body.dtype}
    return functools.partial(_build_prompt_task, settings)


# ---------------------------------------------------------------------------- worker side
def _to_device(obj, device: str):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


class _WorkerRun(KernelRun):
    """The engine inside one worker: the manifest lives with the driver, not on this disk."""

    def _write_manifest(self, manifest: dict) -> None:
        pass


class KernelWorker:
    """One Ray actor: computes capture blocks, sketch rows and Gram pairs with its own model copy.

    The actor outlives one kernel (starting a worker process costs seconds): each call carries
    the run's ``[token, ref]`` and the model is rebuilt only when the token changes, from the
    object ``ref`` names (a factory or the caller's module), so a restarted actor rebuilds it too.
    """

    def __init__(self):
        self.token: str | None = None
        self.run: _WorkerRun | None = None
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda":  # the engine allocates with the default device
            torch.set_default_device("cuda")

    def _run_for(self, config: list) -> _WorkerRun:
        token, ref = config
        if token != self.token or self.run is None:
            import ray

            self.release()
            source, param_names, settings = ray.get(ref)
            model, output_fn = source() if callable(source) else source
            model = model.to(self.device)
            named = dict(model.named_parameters(remove_duplicate=False))
            missing = [n for n in param_names if n not in named]
            if missing:
                raise input_error("ray worker", "parameter", missing[0],
                                  "the same parameter names as the driver's model")
            self.run = _WorkerRun(model, output_fn, [(n, named[n]) for n in param_names],
                                  work=Path(os.devnull), progress=False, persist=False,
                                  **settings)
            self.token = token
        return self.run

    def capture(self, config: list, examples: Sequence, manifest: dict) -> tuple[Any, dict]:
        """The block's factors (exact) or sketched rows, and the manifest with the engine used."""
        run = self._run_for(config)
        with only_selected_trainable(run.model, run.selected):
            block = run._capture(examples, manifest, check=manifest["engine"] is None)
        if run.mode == "sketch":
            result = sketch_block(block, run.shapes, run.sketch_dim, run.seed, run._tables)
        else:
            result = _block_to_state(block)
        return _to_device(result, "cpu"), manifest

    def gram(self, config: list, state_i: dict, state_j: dict | None) -> tuple[np.ndarray, dict]:
        """The float64 Gram block of two capture blocks (``state_j=None``: block i with itself)."""
        run, stats = self._run_for(config), {}
        block_i = _state_to_block(_to_device(state_i, self.device))
        block_j = None if state_j is None else _state_to_block(_to_device(state_j, self.device))
        part = gram_of_blocks(block_i, block_j, run.shapes, run.linear_path, stats,
                              run.gram_dtype)
        return part.cpu().numpy(), stats

    def release(self) -> None:
        """Drop the model copy between kernels."""
        self.run, self.token = None, None

    def pid(self) -> int:
        return os.getpid()


_POOLS: dict[tuple, list] = {}


def worker_pool(ray, executor: RayExecutor) -> list:
    """The actors of this Ray job for ``executor``'s width, started on first use and then reused.

    One pool at a time: asking for another width or retry count replaces it.
    """
    workers, gpus = worker_count(ray, executor.workers)
    key = (ray.get_runtime_context().get_job_id(), workers, gpus, executor.max_retries)
    if key not in _POOLS:
        for pool in _POOLS.values():  # a pool of another width would hold the CPUs it needs
            for actor in pool:
                ray.kill(actor, no_restart=True)
        _POOLS.clear()
        actor_type = ray.remote(KernelWorker).options(
            num_cpus=0 if gpus else 1, num_gpus=gpus, max_restarts=executor.max_retries,
            max_task_retries=executor.max_retries)
        _POOLS[key] = [actor_type.remote() for _ in range(workers)]
    return _POOLS[key]


def stop_workers() -> None:
    """Stop the kernel workers kept by this process (they otherwise hold their CPUs/GPUs until
    the process exits)."""
    if _POOLS:
        ray = _import_ray()
        for pool in _POOLS.values():
            for actor in pool:
                ray.kill(actor, no_restart=True)
    _POOLS.clear()


def drop_pool(actors: list) -> None:
    """Forget a pool whose actors failed for good (the next kernel starts fresh ones)."""
    for key, pool in list(_POOLS.items()):
        if pool is actors:
            del _POOLS[key]


# ---------------------------------------------------------------------------- driver side
class RayKernelRun(KernelRun):
    """KernelRun whose blocks and block pairs run on Ray actors; the driver keeps the files."""

    def __init__(self, model, output_fn, selected, mode, work, budget_gb, block_size, sketch_dim,
                 seed, linear_path, engine, progress, persist=True, gram_dtype="auto", *,
                 executor: RayExecutor):
        super().__init__(model, output_fn, selected, mode, work, budget_gb, block_size,
                         sketch_dim, seed, linear_path, engine, progress, persist=True,
                         gram_dtype=gram_dtype)
        self.executor = executor
        self._settings = {"mode": mode, "budget_gb": budget_gb, "block_size": block_size,
                          "sketch_dim": sketch_dim, "seed": seed, "linear_path": linear_path,
                          "engine": engine, "gram_dtype": gram_dtype}
        self._refs: dict[Path, Any] = {}  # finished blocks, kept in the object store for pairs
        self.actors: list = []
        self._source: Any = None
        self.n_workers = 0
        self.finished = {"capture": 0, "gram": 0}  # results received by this driver
        self.on_finished: Callable[[str, Any], None] | None = None

    # --------------------------------------------------------------- pool
    def _start_actors(self):
        ray = connect(self.executor.address)
        if self.actors:
            return ray
        self.actors = worker_pool(ray, self.executor)
        self.n_workers = len(self.actors)
        factory = self.executor.model_factory
        source = factory if factory is not None else (self.model, self.output_fn)
        # held for the whole run: a restarted worker rebuilds its model from the same object
        self._source = [uuid.uuid4().hex,
                        ray.put((source, [n for n, _ in self.selected], self._settings))]
        return ray

    def _dispatch(self, jobs: list[tuple[Any, str, tuple]],
                  on_result: Callable[[Any, Any], None]) -> None:
        """Run ``(key, method, args)`` jobs on the actors, each as soon as one is free."""
        ray = self._start_actors()
        queue = deque(jobs)
        free = [a for a in self.actors for _ in range(self.executor.in_flight_per_worker)]
        running: dict = {}
        while queue or running:
            while queue and free:
                actor = free.pop(0)
                key, method, args = queue.popleft()
                running[getattr(actor, method).remote(self._source, *args)] = (key, actor)
            done, _ = ray.wait(list(running), num_returns=1)
            key, actor = running.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                if isinstance(getattr(exc, "cause", None), TransferScopeError):
                    raise exc.cause from None  # the worker's own one-line error
                drop_pool(self.actors)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BackendError(f"ray worker: job {key} failed after "
                                   f"{self.executor.max_retries} retries ({first}); finished "
                                   f"blocks are kept in {self.work}: rerun to resume") from exc
            on_result(key, result)
            free.append(actor)
            if self.on_finished is not None:
                self.on_finished(method, key)

    # --------------------------------------------------------------- capture phase
    def _blocks(self, tag: str, examples: Sequence, manifest: dict, bar: Progress) -> list[Path]:
        starts = list(range(0, len(examples), self.block_size))
        paths = [self.work / f"{tag}-{k:05d}.pt" for k in range(len(starts))]
        task = bar.add_task(f"eNTK {self.mode} on Ray: gradients ({tag})", total=len(starts))
        todo = [k for k, p in enumerate(paths) if not p.exists()]
        bar.advance(task, len(starts) - len(todo))

        def chunk(k: int):
            return examples[starts[k]:starts[k] + self.block_size]

        def finish(k: int, result: tuple[Any, dict]) -> None:
            payload, seen = result
            if manifest["engine"] is None:  # the first block decided hooks or loop
                manifest.update(engine=seen["engine"], note=seen["note"],
                                n_outputs=seen["n_outputs"])
                self._write_manifest(manifest)
            _save_torch(paths[k], payload)
            self._sizes[paths[k]] = paths[k].stat().st_size
            self.finished["capture"] += 1
            bar.advance(task)

        if todo and manifest["engine"] is None:  # checked once against autograd, then fanned out
            first = todo.pop(0)
            self._dispatch([(first, "capture", (chunk(first), dict(manifest)))], finish)
        self._dispatch([(k, "capture", (chunk(k), dict(manifest))) for k in todo], finish)
        return paths

    def _load(self, path: Path):
        return torch.load(path, weights_only=True)

    def _super_blocks(self, paths: list[Path]) -> list[list[Path]]:
        """One capture block per group: every block pair is a job of its own."""
        return [[p] for p in paths]

    # --------------------------------------------------------------- Gram phase
    def _ref(self, path: Path):
        ray = self._start_actors()
        if path not in self._refs:
            self._refs[path] = ray.put(self._load(path))
        return self._refs[path]

    def _exact_gram(self, groups1, groups2, symmetric: bool, bar: Progress) -> np.ndarray:
        offsets1 = self._offsets(groups1)
        offsets2 = offsets1 if symmetric else self._offsets(groups2)
        pairs = [(i, j) for i in range(len(groups1))
                 for j in range(i if symmetric else 0, len(groups2))]
        layout = {"rows": [g[0].name for g in groups1],
                  "cols": None if symmetric else [g[0].name for g in groups2]}
        state_path, kernel_path = self.work / GRAM_STATE, self.work / GRAM_MATRIX
        done: set[tuple[int, int]] = set()
        kernel = np.zeros((offsets1[-1], offsets2[-1]))
        if state_path.exists() and kernel_path.exists():
            saved = json.loads(state_path.read_text("utf-8"))
            if saved.get("layout") == layout:
                done = {tuple(p) for p in saved["done"]}
                kernel = np.load(kernel_path)
        task = bar.add_task(f"eNTK exact on Ray: Gram blocks ({len(pairs)} pairs)",
                            total=len(pairs))
        bar.advance(task, len(done))

        def finish(pair: tuple[int, int], result: tuple[np.ndarray, dict]) -> None:
            (i, j), (part, stats) = pair, result
            r0, r1, c0, c1 = offsets1[i], offsets1[i + 1], offsets2[j], offsets2[j + 1]
            kernel[r0:r1, c0:c1] = part
            if symmetric and i != j:
                kernel[c0:c1, r0:r1] = part.T
            for name, value in stats.items():
                self.gram_stats[name] = self.gram_stats.get(name, 0.0) + value
            done.add(pair)
            save_gram_progress(kernel, kernel_path, state_path, layout, done)
            self.finished["gram"] += 1
            bar.advance(task)

        jobs = [((i, j), "gram", (self._ref(groups1[i][0]),
                                  None if symmetric and i == j else self._ref(groups2[j][0])))
                for i, j in pairs if (i, j) not in done]
        self._dispatch(jobs, finish)
        return kernel

    def compute(self, examples: Sequence, examples2: Sequence | None) -> tuple[np.ndarray, dict]:
        try:
            kernel, details = super().compute(examples, examples2)
        finally:
            self.close()
        details["executor"] = {"kind": "ray", "workers": self.n_workers,
                               "address": self.executor.address}
        return kernel, details

    def close(self) -> None:
        """Free the workers' model copies and the blocks held in the object store."""
        if self.actors:
            ray = _import_ray()
            ray.wait([actor.release.remote() for actor in self.actors],
                     num_returns=len(self.actors), timeout=60)
        self.actors = []
        self._refs.clear()
        self._source = None
