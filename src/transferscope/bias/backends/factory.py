"""The backend a run opens: the spec's backend, in this process or on Ray workers, cached.

``--executor local`` builds it with :func:`~transferscope.bias.backends.registry.make_backend`,
``--executor ray`` with :func:`~transferscope.bias.backends.ray_pool.make_ray_backend`: the same
answers through the same response cache, so either can resume the other's run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from transferscope.bias.backends.base import Backend
from transferscope.bias.backends.ray_pool import make_ray_backend
from transferscope.bias.backends.registry import make_backend
from transferscope.bias.config import BackendOptions
from transferscope.core.errors import InputError, input_error


def backend_factory(executor: str, address: str | None = None,
                    workers: int | None = None) -> Callable[..., Backend]:
    """``make_backend`` for ``--executor local``, :func:`make_ray_backend` for ``ray``."""
    if executor not in ("local", "ray"):
        raise input_error("--executor", "executor", executor, "'local' or 'ray'")
    if executor == "local":
        if address is not None or workers is not None:
            raise InputError("--address/--workers: given with --executor local: expected "
                             "--executor ray")
        return make_backend
    return functools.partial(make_ray_backend, address=address, workers=workers)


def open_backend(spec: str, options: BackendOptions, *, base_url: str | None = None,
                 api_key_env: str | None = None, concurrency: int = 4) -> Backend:
    """The backend ``spec`` names, placed and cached as ``options`` say (close it when done)."""
    make = backend_factory(options.executor, options.address, options.workers)
    return make(spec, base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
                max_retries=options.max_retries, timeout_s=options.timeout_s,
                template_model=options.template_model, cache=options.cache)
