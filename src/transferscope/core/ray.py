"""Connecting to Ray, once for both Ray executors (the eNTK blocks and the bias requests).

Ray is an optional extra (``pip install 'transferscope[ray]'``); nothing here imports it at
module load.
"""

from __future__ import annotations

from typing import Any

from transferscope.core.errors import BackendError, EnvironmentProblem, input_error


def import_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise EnvironmentProblem("executor 'ray': the ray package is not installed: expected "
                                 "pip install 'transferscope[ray]'") from exc
    return ray


def connect(address: str | None) -> Any:
    """The ``ray`` module, connected to ``address`` (a local instance when None and none is up)."""
    ray = import_ray()
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


def worker_count(ray: Any, requested: int | None) -> tuple[int, float]:
    """(workers, GPUs per worker): one GPU each where the cluster has GPUs, else one CPU each."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    if requested is not None and requested < 1:
        raise input_error("ray executor", "workers", requested, "a positive integer")
    available = gpus if gpus else max(1, cpus)
    return (requested or available), (1.0 if gpus else 0.0)
