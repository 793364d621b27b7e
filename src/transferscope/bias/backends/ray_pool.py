"""A Backend that spreads each batch of requests over backend replicas on Ray workers.

:class:`RayBackend` is a :class:`~transferscope.bias.backends.base.Backend` whose requests are
answered by Ray actors, each holding its own backend built from the same spec: an ``hf-local``
replica (its own model copy) or an ``openai-compatible`` client with its share of the endpoint's
concurrency budget (``concurrency // workers`` each, at least 1, so the server sees at most
``concurrency`` requests when it divides evenly).

Cache semantics (our choice: workers return answers, the driver writes them). :func:`
make_ray_backend` wraps the RayBackend in the same SQLite :class:`~transferscope.bias.backends.
cache.CachedBackend` as a local run, on the driver. The driver looks every request up first and
sends only the missing ones (identical requests once), and stores each shard's answers the
moment that shard returns. So no item is answered twice, none is lost, workers need no shared
disk, and local and Ray runs share one cache (the RayBackend has the local backend's id and
fingerprint, so their keys are the same). A worker that dies mid-shard is restarted by Ray and
the shard retried; a driver that stops resumes from the cache like a local run.

Split: shards are contiguous slices of the request list, multiples of the ``hf-local`` batch
size (so each generation batch is the one a local run would pad and run), dealt to whichever
worker is free.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transferscope.bias.backends.base import (
    Backend,
    BackendStats,
    Conversation,
    GenerationSettings,
    OnReply,
    Reply,
)
from transferscope.bias.backends.cache import CachedBackend, ResponseCache
from transferscope.bias.backends.registry import make_backend, parse_spec
from transferscope.core.errors import BackendError, TransferScopeError, input_error
from transferscope.core.ray import connect

_COUNTERS = ("model_calls", "prompt_tokens", "completion_tokens", "seconds", "retries")


def _stats_delta(before: dict, after: BackendStats) -> dict:
    return {k: getattr(after, k) - before[k] for k in _COUNTERS}


class BackendWorker:
    """One Ray actor holding one backend replica (no cache: the driver keeps the cache)."""

    def __init__(self, spec: str, options: dict):
        self.backend = make_backend(spec, cache=False, **options)

    def chat(self, conversations: list[Conversation], settings: GenerationSettings
             ) -> tuple[list[Reply], dict]:
        before = {k: getattr(self.backend.stats, k) for k in _COUNTERS}
        replies = self.backend.chat(conversations, settings)
        return replies, _stats_delta(before, self.backend.stats)

    def option_logprobs_many(self, requests: list[tuple[Conversation, list[str]]]
                             ) -> tuple[list[list[float]], dict]:
        before = {k: getattr(self.backend.stats, k) for k in _COUNTERS}
        values = self.backend.option_logprobs_many(requests)
        return values, _stats_delta(before, self.backend.stats)

    def pid(self) -> int:
        import os

        return os.getpid()


class RayBackend(Backend):
    """A backend whose requests run on Ray actors, each with its own replica of ``spec``."""

    def __init__(self, spec: str, *, address: str | None = None, workers: int | None = None,
                 ray_retries: int = 3, **options: Any):
        super().__init__()
        kind, _ = parse_spec(spec)
        # the driver's own instance: id, fingerprint and capabilities (hf-local loads lazily,
        # so the driver never loads the model)
        self.local = make_backend(spec, cache=False, **options)
        self.id = self.local.id
        self.ray = connect(address)
        if workers is not None and workers < 1:
            raise input_error("ray executor", "workers", workers, "a positive integer")
        # one CPU each: the hf-local backend runs on CPU, an HTTP client needs no more (so
        # not core.ray.worker_count, which counts a GPU cluster's GPUs)
        self.workers = workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        self.batch_size = int(options.get("batch_size", 8)) if kind == "hf-local" else 1
        worker_options = dict(options)
        if kind == "openai":
            total = int(options.get("concurrency", 4))
            worker_options["concurrency"] = max(1, total // self.workers)
        actor_type = self.ray.remote(BackendWorker).options(
            num_cpus=1, max_restarts=ray_retries, max_task_retries=ray_retries)
        self.ray_retries = ray_retries
        self.actors = [actor_type.remote(spec, worker_options) for _ in range(self.workers)]
        self.shards_done = 0

    @property
    def fingerprint(self) -> str:
        return self.local.fingerprint

    @property
    def supports_option_logprobs(self) -> bool:
        return self.local.supports_option_logprobs

    @property
    def option_logprob_kind(self) -> str:
        return self.local.option_logprob_kind

    def option_token_counts(self, conversation: Conversation, options: Sequence[str]
                            ) -> list[int] | None:
        return self.local.option_token_counts(conversation, options)  # a tokenizer, no model

    def _shards(self, n: int) -> list[tuple[int, int]]:
        per_worker = math.ceil(n / self.workers)
        size = self.batch_size * math.ceil(per_worker / self.batch_size)
        return [(start, min(n, start + size)) for start in range(0, n, size)]

    def _run(self, method: str, items: Sequence, extra: tuple,
             on_shard: Callable[[int, list], None]) -> None:
        """Each shard of ``items`` to a free actor; ``on_shard(start, results)`` as each returns."""
        ray = self.ray
        queue = deque(self._shards(len(items)))
        free = list(self.actors)
        running: dict = {}
        while queue or running:
            while queue and free:
                actor = free.pop(0)
                start, end = queue.popleft()
                ref = getattr(actor, method).remote(list(items[start:end]), *extra)
                running[ref] = (start, actor)
            done, _ = ray.wait(list(running), num_returns=1)
            start, actor = running.pop(done[0])
            try:
                results, stats = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                if isinstance(getattr(exc, "cause", None), TransferScopeError):
                    raise exc.cause from None  # the replica's own error (or no option scoring)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BackendError(f"ray worker: shard at request {start} of {self.id} failed "
                                   f"after {self.ray_retries} retries ({first}); answers so far "
                                   "are in the cache: rerun to resume") from exc
            for name, value in stats.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)
            self.shards_done += 1
            on_shard(start, results)
            free.append(actor)

    def chat(self, conversations: Sequence[Conversation], settings: GenerationSettings,
             on_reply: OnReply | None = None) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(conversations)

        def deliver(start: int, shard: list[Reply]) -> None:
            for offset, reply in enumerate(shard):
                replies[start + offset] = reply
                if on_reply is not None:
                    on_reply(start + offset, reply)

        self._run("chat", conversations, (settings,), deliver)
        return [r for r in replies if r is not None]

    def option_logprobs_many(
        self, requests: Sequence[tuple[Conversation, Sequence[str]]],
    ) -> list[list[float]]:
        values: list[list[float] | None] = [None] * len(requests)

        def deliver(start: int, shard: list[list[float]]) -> None:
            values[start:start + len(shard)] = shard

        self._run("option_logprobs_many", [(c, list(o)) for c, o in requests], (), deliver)
        return [v for v in values if v is not None]

    def close(self) -> None:
        """Stop the replicas (their model copies)."""
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.actors = []
        self.local.close()


def make_ray_backend(spec: str, *, address: str | None = None, workers: int | None = None,
                     cache: bool | str | Path | ResponseCache = True, **options: Any) -> Backend:
    """Like :func:`~transferscope.bias.backends.registry.make_backend`, answered on Ray workers."""
    backend = RayBackend(spec, address=address, workers=workers, **options)
    if cache is False:
        return backend
    store = cache if isinstance(cache, ResponseCache) else ResponseCache(
        None if cache is True else Path(cache))
    return CachedBackend(backend, store)
