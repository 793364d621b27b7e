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
# pytest -n N --dist loadgroup (make test): a worker builds its own session- and module-scoped
# fixtures, so tests sharing an expensive one are kept on one worker (one xdist group): the Ray
# tests (one Ray instance), and the tests of a module that share a module-scoped fixture (the
# demo run behind tests/demo/test_demo_content.py would otherwise run once per worker)
SHARED_SESSION = {"ray_cluster": "ray"}


def _module_fixtures(item) -> bool:
    """Whether ``item`` uses a fixture that lives as long as its module."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    return any(d and d[-1].scope in ("module", "package", "class") for d in defs)


def pytest_collection_modifyitems(config, items):
    """Put the tests that share an expensive fixture in one xdist group (see above)."""
    groups: dict[str, str] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        fixtures = getattr(item, "fixturenames", ())
        shared = [g for f, g in SHARED_SESSION.items() if f in fixtures]
        if shared:
            groups[module] = shared[0]
        elif _module_fixtures(item):
            groups.setdefault(module, module)
    for item in items:
        group = groups.get(item.nodeid.split("::")[0])
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


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
