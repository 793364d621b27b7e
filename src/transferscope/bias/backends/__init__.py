"""Model backends for the bias probes: ``hf-local`` and ``openai-compatible``, behind one interface.

See :mod:`transferscope.bias.backends.base` for the contract,
:func:`transferscope.bias.backends.registry.make_backend` to build one from a spec string, and
:func:`transferscope.bias.backends.factory.open_backend` for one placed on Ray workers too.
"""

from transferscope.bias.backends.base import (
    Backend,
    BackendStats,
    Conversation,
    GenerationSettings,
    Message,
    OptionScoringNotSupported,
    Reply,
)
from transferscope.bias.backends.cache import CachedBackend, ResponseCache, default_cache_path
from transferscope.bias.backends.factory import BackendOptions, open_backend
from transferscope.bias.backends.ray_pool import RayBackend, make_ray_backend
from transferscope.bias.backends.registry import make_backend, parse_spec

__all__ = [
    "Backend",
    "BackendOptions",
    "BackendStats",
    "CachedBackend",
    "Conversation",
    "GenerationSettings",
    "Message",
    "OptionScoringNotSupported",
    "RayBackend",
    "Reply",
    "ResponseCache",
    "default_cache_path",
    "make_backend",
    "make_ray_backend",
    "open_backend",
    "parse_spec",
]
