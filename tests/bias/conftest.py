"""Shared fixtures for the bias tests: a real llama.cpp OpenAI-compatible server.

``llama_server`` starts ``python -m llama_cpp.server`` on 127.0.0.1 serving the embedded
SmolLM2 GGUF (model alias ``smollm2``) once per test session, waits until ``/v1/models``
answers, yields the base URL (``http://127.0.0.1:<port>/v1``) and stops it at the end.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from transferscope.bias.backends.llama_server import free_port, serve_gguf


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: on a shared, loaded machine two spinning threads are several
    times slower than one (measured: 82 s against 12 s for the same batch)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def closed_port() -> int:
    """A local port with no server behind it (connections are refused)."""
    return free_port()


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Base URL of a real llama.cpp OpenAI-compatible server serving the embedded SmolLM2."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install -e '.[llamacpp]')")
    with serve_gguf(n_threads=1, n_ctx=1024) as base_url:
        yield base_url
