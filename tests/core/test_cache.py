import json

import numpy as np
import pytest

from transferscope.core.cache import Cache, code_version, content_key, file_fingerprint
from transferscope.core.io import atomic_write_bytes


def test_content_key_is_stable_and_order_free_for_dicts():
    a = content_key("kernel", {"model": "smollm2", "n": 8}, np.arange(4.0))
    b = content_key("kernel", {"n": 8, "model": "smollm2"}, np.arange(4.0))
    assert a == b and len(a) == 64


@pytest.mark.parametrize(
    "other",
    [
        ("kernel", {"model": "smollm2", "n": 9}, np.arange(4.0)),
        ("kernel", {"model": "smollm2", "n": 8}, np.arange(4.0) + 1e-12),
        ("kernel", {"model": "smollm2", "n": 8}, np.arange(4.0).astype(np.float32)),
        ("kernel", {"model": "smollm2", "n": 8}, np.arange(4.0).reshape(2, 2)),
    ],
)
def test_content_key_changes_with_any_input(other):
    assert content_key("kernel", {"model": "smollm2", "n": 8}, np.arange(4.0)) != content_key(*other)


def test_content_key_rejects_unhashable_objects():
    with pytest.raises(TypeError):
        content_key(object())


def test_cache_round_trips_json_and_arrays(tmp_path):
    cache = Cache("unit", root=tmp_path)
    key = content_key("x")
    assert cache.load_json(key) is None and cache.load_array(key) is None
    cache.save_json(key, {"a": [1, 2]})
    arr = np.random.default_rng(0).normal(size=(3, 5))
    cache.save_array(key, arr)
    assert cache.load_json(key) == {"a": [1, 2]}
    np.testing.assert_array_equal(cache.load_array(key), arr)
    assert cache.has_json(key) and cache.has_array(key)
    assert cache.path(key, ".json").parent.name == key[:2]


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "f.json"
    atomic_write_bytes(target, json.dumps({"v": 1}).encode())
    atomic_write_bytes(target, json.dumps({"v": 2}).encode())
    assert json.loads(target.read_text()) == {"v": 2}
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_file_fingerprint_matches_hashlib(tmp_path):
    import hashlib

    data = b"abc" * 1_000_000
    p = tmp_path / "blob"
    p.write_bytes(data)
    assert file_fingerprint(p) == hashlib.sha256(data).hexdigest()


def _module(tmp_path, monkeypatch, source: str, name: str = "versioned_mod") -> str:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_code_version_follows_the_code_not_its_comments(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch, '"""Doc."""\ndef f(x):\n    return x + 1\n')
    first = code_version(name)
    path = tmp_path / f"{name}.py"
    path.write_text('"""Other words."""\n# a comment\ndef f(x):\n    """Adds."""\n'
                    '    return x + 1  # same code\n')
    assert code_version(name) == first and len(first) == 16
    path.write_text('"""Doc."""\ndef f(x):\n    return x + 2\n')
    assert code_version(name) != first


def test_code_version_of_a_package_covers_every_module(tmp_path, monkeypatch):
    pkg = tmp_path / "vpkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "deep.py").write_text("A = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_version("vpkg")
    (pkg / "sub" / "deep.py").write_text("A = 2\n")
    assert code_version("vpkg") != before
    with pytest.raises(ValueError, match="no module or package named 'nosuchmodule'"):
        code_version("nosuchmodule")


def test_entries_of_other_code_are_not_read_back(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch, "def f():\n    return 1\n")
    old = Cache("unit", root=tmp_path / "c", code=[name])
    key = content_key("x")
    old.save_json(key, {"value": 1})
    assert Cache("unit", root=tmp_path / "c", code=[name]).load_json(key) == {"value": 1}
    (tmp_path / f"{name}.py").write_text("def f():\n    return 2\n")
    new = Cache("unit", root=tmp_path / "c", code=[name])
    assert new.version != old.version and new.load_json(key) is None


def test_a_part_cache_is_versioned_by_the_whole_part(tmp_path):
    import transferscope
    from transferscope.core.cache import _owner_part

    assert _owner_part("transferscope.ntk.kernel.empirical") == "transferscope.ntk"
    assert _owner_part("transferscope.core.models") == "transferscope.core.models"
    here = Cache("unit", root=tmp_path)  # opened from a test module: no part code
    assert here.version == content_key(transferscope.__version__, code_version())[:16]
    assert here.root == tmp_path / "unit" / here.version


def test_every_test_has_its_own_cache_with_the_models_linked(private_cache, shared_models):
    import os

    from transferscope.core.cache import cache_root

    assert cache_root() == private_cache
    assert os.environ["TRANSFERSCOPE_CACHE"] == str(private_cache)
    assert (private_cache / "models").resolve() == shared_models
