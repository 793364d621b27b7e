import json

import numpy as np
import pytest

from transferscope.core.cache import Cache, content_key, file_fingerprint
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
