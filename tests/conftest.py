"""Test-wide settings: never reach a model hub; every test its own cache; the loaded embedded
models shared.

Caches: each test runs with ``TRANSFERSCOPE_CACHE`` pointing at a folder of its own
(``private_cache``), so no test reads what another wrote and nothing reaches the user's
cache. Session-scoped fixtures run under one session folder of their own. Both link
``models/`` to the user's converted models (content-keyed and written atomically under a lock,
so safe to share): the GGUF is converted once, not once per test.
"""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI does: no spinning on shared cores
if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n N: one torch thread per worker process
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

CACHE_ENV = "TRANSFERSCOPE_CACHE"


def _cache_with_models(root: Path, models: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "models").symlink_to(models, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def shared_models() -> Path:
    """The user's converted-model folder (``<cache root>/models`` as the session found it)."""
    from transferscope.core.cache import cache_root

    models = cache_root() / "models"
    models.mkdir(parents=True, exist_ok=True)
    return models.resolve()


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory, shared_models):
    """The cache of session-scoped fixtures: a folder of this session, models linked."""
    root = _cache_with_models(tmp_path_factory.mktemp("session-cache"), shared_models)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        yield root


@pytest.fixture(autouse=True)
def private_cache(session_cache, shared_models, tmp_path_factory, monkeypatch) -> Path:
    """This test's own cache folder (models linked); request it to look inside."""
    root = _cache_with_models(tmp_path_factory.mktemp("cache"), shared_models)
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


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

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=512 * 2**20, logging_level="WARNING",
                 runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    yield ray
    ray.shutdown()
