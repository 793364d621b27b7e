"""The eNTK engine on a Ray cluster: capture blocks and Gram block pairs as actor calls.

Why Ray: a user who outgrows one machine should run on an existing distributed engine, not on a
home-made one. :class:`RayExecutor` implements the engine's executor protocol
(:class:`~transferscope.ntk.kernel.blocks.BlockExecutor`): every block's capture, and in exact
mode every pair of blocks (the ``block-pairs`` Gram plan), is one call on a worker. Each worker
is a Ray actor holding its own :class:`~transferscope.ntk.kernel.blocks.BlockEngine` around its
own model copy, built once from a picklable model factory (``prompt_task_factory`` in
:mod:`transferscope.ntk.task` for prompt tasks) or from the caller's module placed in the object
store; it runs on a GPU where the cluster has one.

Resume and faults (our choices): the driver (:class:`~transferscope.ntk.kernel.local.KernelDriver`)
writes every finished block and the Gram accumulated so far to the kernel's work directory as
they arrive, in the local layout, so capture blocks are shared with the local executor in both
directions. A worker that dies mid-call is restarted by Ray and the call retried
(``max_retries``); a driver that stops resumes from the files, so nothing finished is computed
twice.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from transferscope.core.errors import BackendError, TransferScopeError, input_error
from transferscope.core.ray import connect, import_ray, worker_count
from transferscope.ntk.kernel.blocks import BlockEngine, CapturedBlock, GramPlan, Job
from transferscope.ntk.kernel.capture import only_selected_trainable

ModelFactory = Callable[[], tuple[torch.nn.Module, Callable]]


@dataclass(kw_only=True, eq=False)
class RayExecutor:
    """Where the kernel runs: a Ray cluster and how many workers to use on it.

    ``address``: ``None`` joins the Ray instance this process already started, or starts a local
    one; ``"auto"`` or ``"host:6379"`` joins a cluster started with ``ray start``; a
    ``ray://host:10001`` address goes through Ray Client. ``workers``: actors to start (default:
    the cluster's GPUs where it has any, otherwise its CPUs). ``model_factory``: a picklable
    function returning ``(model, output_fn)`` that each worker calls once; ``None`` ships the
    caller's model and output function through the object store instead. The other fields hold
    the kernel in progress (one at a time per executor).
    """

    address: str | None = None
    workers: int | None = None
    max_retries: int = 3
    model_factory: ModelFactory | None = None
    in_flight_per_worker: int = 2
    label: ClassVar[str] = " on Ray"
    gram_plan: ClassVar[GramPlan] = "block-pairs"
    actors: list = field(default_factory=list, init=False, repr=False)
    n_workers: int = field(default=0, init=False, repr=False)
    _engine: BlockEngine | None = field(default=None, init=False, repr=False)
    _work: Path | None = field(default=None, init=False, repr=False)
    _source: Any = field(default=None, init=False, repr=False)

    def start(self, engine: BlockEngine, work: Path) -> None:
        """Begin a kernel; the workers are started (or reused) at the first call."""
        self._engine, self._work, self.n_workers = engine, work, 0

    def _pool(self):
        ray = connect(self.address)
        if self.actors:
            return ray
        self.actors = worker_pool(ray, self)
        self.n_workers = len(self.actors)
        engine = self._engine
        assert engine is not None  # set by start(), which the driver calls first
        source = (self.model_factory if self.model_factory is not None
                  else (engine.model, engine.output_fn))
        # held for the whole kernel: a restarted worker rebuilds its engine from the same object
        self._source = [uuid.uuid4().hex,
                        ray.put((source, [n for n, _ in engine.selected], engine.settings()))]
        return ray

    def share(self, obj: Any) -> Any:
        """An object-store reference (a worker receives the object itself as the argument)."""
        return self._pool().put(obj)

    def map_blocks(self, method: str, jobs: Iterable[Job]) -> Iterator[tuple[Hashable, Any]]:
        """Run ``(key, args)`` jobs on the actors, each as soon as one is free."""
        ray = self._pool()
        queue = deque(jobs)
        free = [a for a in self.actors for _ in range(self.in_flight_per_worker)]
        running: dict = {}
        while queue or running:
            while queue and free:
                actor = free.pop(0)
                key, args = queue.popleft()
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
                raise BackendError(f"ray worker: job {key} failed after {self.max_retries} "
                                   f"retries ({first}); finished blocks are kept in "
                                   f"{self._work}: rerun to resume") from exc
            free.append(actor)
            yield key, result

    def close(self) -> None:
        """Free the workers' model copies and the blocks held in the object store."""
        if self.actors:
            ray = import_ray()
            ray.wait([actor.release.remote() for actor in self.actors],
                     num_returns=len(self.actors), timeout=60)
        self.actors = []
        self._source = self._engine = None

    def describe(self) -> dict:
        return {"kind": "ray", "workers": self.n_workers, "address": self.address}


# ---------------------------------------------------------------------------- worker side
def _to_device(obj, device: str):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


class KernelWorker:
    """One Ray actor: a :class:`BlockEngine` around its own model copy.

    The actor outlives one kernel (starting a worker process costs seconds): each call carries
    the kernel's ``[token, ref]`` and the engine is rebuilt only when the token changes, from the
    object ``ref`` names (a factory or the caller's module), so a restarted actor rebuilds it too.
    """

    def __init__(self):
        self.token: str | None = None
        self.engine: BlockEngine | None = None
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda":  # the engine allocates with the default device
            torch.set_default_device("cuda")

    def _engine_for(self, config: list) -> BlockEngine:
        token, ref = config
        if token != self.token or self.engine is None:
            self.release()
            source, param_names, settings = import_ray().get(ref)
            model, output_fn = source() if callable(source) else source
            model = model.to(self.device)
            named = dict(model.named_parameters(remove_duplicate=False))
            missing = [n for n in param_names if n not in named]
            if missing:
                raise input_error("ray worker", "parameter", missing[0],
                                  "the same parameter names as the driver's model")
            self.engine = BlockEngine(model, output_fn, [(n, named[n]) for n in param_names],
                                      **settings)
            self.token = token
        return self.engine

    def capture(self, config: list, examples: Sequence, manifest: dict) -> CapturedBlock:
        """:meth:`BlockEngine.capture`, its payload moved to the CPU for the driver."""
        engine = self._engine_for(config)
        with only_selected_trainable(engine.model, engine.selected):
            captured = engine.capture(examples, manifest)
        captured.payload = _to_device(captured.payload, "cpu")
        return captured

    def gram(self, config: list, state_i: dict, state_j: dict | None) -> tuple[np.ndarray, dict]:
        """:meth:`BlockEngine.gram` on this worker's device."""
        engine = self._engine_for(config)
        return engine.gram(_to_device(state_i, self.device),
                           None if state_j is None else _to_device(state_j, self.device))

    def release(self) -> None:
        """Drop the model copy between kernels."""
        self.engine, self.token = None, None

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
        ray = import_ray()
        for pool in _POOLS.values():
            for actor in pool:
                ray.kill(actor, no_restart=True)
    _POOLS.clear()


def drop_pool(actors: list) -> None:
    """Forget a pool whose actors failed for good (the next kernel starts fresh ones)."""
    for key, pool in list(_POOLS.items()):
        if pool is actors:
            del _POOLS[key]
