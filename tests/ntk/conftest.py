"""NTK test fixtures shared by more than one module."""

import pytest


@pytest.fixture()
def linked_private_cache(smollm2, tmp_path, monkeypatch):
    """Kernels and runs in a private cache; the model the session converted (``smollm2``) is
    linked in, so commands run here do not convert it again."""
    from transferscope.core.cache import cache_root

    shared = cache_root() / "models"
    (tmp_path / "cache").mkdir()
    if shared.is_dir():
        (tmp_path / "cache" / "models").symlink_to(shared)
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))
