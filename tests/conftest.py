"""Test-wide settings: never reach a model hub; share the loaded embedded models."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does: no spinning on shared cores

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of the embedded SmolLM2-135M-Instruct, loaded once per session."""
    from transferscope.core.models import load_causal_lm

    return load_causal_lm("smollm2")


@pytest.fixture(scope="session")
def minilm():
    """(model, tokenizer) of the embedded all-MiniLM-L6-v2, loaded once per session."""
    from transferscope.core.models import load_encoder

    return load_encoder("minilm")


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray instance with 2 CPUs whose workers can import this test package (shared by
    the NTK and bias Ray tests)."""
    ray = pytest.importorskip("ray")
    from pathlib import Path

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=512 * 2**20, logging_level="WARNING",
                 runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    yield ray
    ray.shutdown()
