"""Start a real local OpenAI-compatible server (llama-cpp-python) on a GGUF, for tests and demos.

By default it serves the embedded SmolLM2 GGUF on 127.0.0.1 with logits kept for every token,
so ``/v1/completions`` can echo prompt log-probabilities (option scoring).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from transferscope.core.errors import BackendError, EnvironmentProblem

DEFAULT_ALIAS = "smollm2"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path, limit: int = 1500) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return " ".join(text[-limit:].split())


@contextmanager
def serve_gguf(gguf: str | Path | None = None, *, alias: str = DEFAULT_ALIAS,
               port: int | None = None, n_ctx: int = 2048, n_threads: int | None = None,
               startup_timeout_s: float = 180.0) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` until the block ends; yields its ``/v1`` base URL."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise EnvironmentProblem("llama-cpp-python is not installed: "
                                 "pip install 'transferscope[llamacpp]'")
    if gguf is None:
        from transferscope.core.models import embedded_gguf_path

        gguf = embedded_gguf_path()
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_path = Path(tempfile.gettempdir()) / f"transferscope-llama-server-{port}.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads or max(1, os.cpu_count() or 1)), "--logits_all", "true",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise BackendError(f"llama.cpp server on {base_url} exited with "
                                   f"{process.returncode}: {_log_tail(log_path)}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BackendError(f"llama.cpp server on {base_url} did not answer within "
                                   f"{startup_timeout_s:.0f} s: {_log_tail(log_path)}")
            time.sleep(0.5)
        yield base_url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
