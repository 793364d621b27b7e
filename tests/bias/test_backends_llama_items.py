"""Items from a file through a real llama.cpp server, the cache fingerprint built from what a
server reports, and secrets masked in the replies a cache stores.

The llama.cpp server is the session fixture ``llama_server`` (one per test session); scripted
servers (``local_server``) stand in only where a real one cannot be made to change its model
or echo a key on demand.
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from tests.bias.test_backends_openai import LLAMA_MODEL_ALIAS, SETTINGS, local_server  # noqa: F401
from tests.bias.test_cli import cli  # noqa: F401
from tests.bias.unbench_sample import write_unbench_sample
from transferscope.bias.backends import make_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUESTION = [{"role": "user", "content": "Say hello."}]


def _unbench_run(cli, llama_server, tmp_path, first_rows: int | None) -> str:  # noqa: F811
    """Import the written UNBench sample, run the vote test on it (or on its first rows)
    through the real llama.cpp server with log-probability scoring, check the run folder,
    and return `bias show`."""
    items = tmp_path / "unbench.jsonl"
    imported = cli("bias", "import-unbench", str(write_unbench_sample(tmp_path / "ub")),
                   "--out", str(items))
    assert imported.returncode == 0, imported.stderr
    assert "task 2 vote items: 14" in imported.stdout and "other members: 4" in imported.stdout
    lines = [line for line in items.read_text().splitlines(keepends=True)
             if json.loads(line)["test"] == "vote"]
    items.write_text("".join(lines[:first_rows] if first_rows else lines))
    run = ["bias", "run", "--items", str(items), "--tests", "vote",
           "--model", f"openai:{LLAMA_MODEL_ALIAS}", "--base-url", llama_server,
           "--template-model", "smollm2", "--cache", str(tmp_path / "cache.sqlite"),
           "--n-boot", "50", "--out", str(tmp_path / "run")]
    first = cli(*run)
    assert first.returncode == 0, first.stderr
    n = first_rows or 14

    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["items"] == {"vote": n}
    assert summary["unparsed"] == {"vote": 0}  # no unparseable answer on the vote test
    assert summary["methods"] == {"vote": ["logprob-mean"]}
    prov = summary["provenance"]
    assert prov["items_sha256"] == hashlib.sha256(items.read_bytes()).hexdigest()
    assert "server=" in prov["backend_fingerprint"] and "--items" in prov["command_line"]
    assert prov["package_version"] and summary["config"]["items"] == str(items)
    samples = [json.loads(line) for line in
               (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == n
    for row in samples:
        assert row["messages"][0]["role"] == "system"
        assert f"representative of {row['nation']}" in row["messages"][0]["content"]
        lp = row["option_logprobs"]
        assert set(lp) == {"In favour", "Against", "Abstain"}
        assert all(math.isfinite(v) and v < 0 for v in lp.values())
        per_token = {o: lp[o] / k for o, k in zip(row["options"], row["token_counts"],
                                                   strict=True)}
        assert row["parse"] == max(per_token, key=per_token.get)  # the mean-per-token argmax
        assert row["correct"] == (row["parse"].lower() == row["gold"])

    shown = cli("bias", "show", str(tmp_path / "run"))
    assert shown.returncode == 0, shown.stderr
    assert f"vote      role          {n} / 0 /" in shown.stdout
    assert (tmp_path / "run" / "items.html").exists()
    again = cli(*run)
    assert again.returncode == 0 and "model calls: 0" in again.stdout  # re-scored from cache
    return shown.stdout


def test_unbench_items_through_llama_cpp_with_logprob_scoring(cli, llama_server,  # noqa: F811
                                                               tmp_path):
    """Two items: llama-cpp-python computes every echoed token's log-probabilities in Python
    (about 8 s per option on a 110-token prompt here), so the fast suite asks few."""
    _unbench_run(cli, llama_server, tmp_path, first_rows=2)


@pytest.mark.slow
def test_all_unbench_items_through_llama_cpp(cli, llama_server, tmp_path):  # noqa: F811
    """All 14 items (about 6 minutes): every member, three gold abstentions."""
    shown = _unbench_run(cli, llama_server, tmp_path, first_rows=None)
    assert "other members" in shown and "Japan" in shown and "Egypt" in shown
    rows = [json.loads(line) for line in
            (tmp_path / "run" / "answers.jsonl").read_text().splitlines()]
    assert sum(r["gold"] == "abstain" for r in rows) == 3  # abstentions kept
    (tmp_path / "show.txt").write_text(shown)


def _models(meta: dict):
    def get(path, headers):
        if path.endswith("/models"):
            return 200, json.dumps({"object": "list", "data": [
                {"id": "m", "object": "model", "created": meta.pop("created", 1), **meta}]}
            ).encode()
        return 404, b"{}"
    return get


def _reply(text: str):
    def post(n, path, headers, body):
        return 200, {"content-type": "application/json"}, json.dumps({
            "choices": [{"message": {"content": text.replace("KEY", headers.get(
                "Authorization", ""))}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}}).encode()
    return post


def test_a_server_reporting_another_model_misses_the_cache_and_says_so(  # noqa: F811
        local_server, tmp_path):  # noqa: F811
    meta = {"meta": {"n_params": 135_000_000, "chat_format": "chatml"}}
    server = local_server(_reply("hello"), _models(meta))
    cache = tmp_path / "cache.sqlite"

    def ask():
        backend = make_backend("openai:m", base_url=server.url, cache=cache)
        backend.chat([QUESTION], SETTINGS)
        backend.close()
        return backend.stats

    assert ask().model_calls == 1
    same = ask()  # the same report ("created" is left out: llama.cpp stamps it per request)
    assert same.model_calls == 0 and same.cache_hits == 1 and "cache_notice" not in same.extra
    meta["meta"] = {"n_params": 135_000_000, "chat_format": "llama-2"}
    changed = ask()
    assert changed.model_calls == 1 and changed.cache_hits == 0
    assert "reports a different model" in changed.extra["cache_notice"]
    server.close()  # gone: a finished run still re-scores from the cache, and says so
    offline = ask()
    assert offline.model_calls == 0 and offline.cache_hits == 1
    assert "cannot be reached" in offline.extra["cache_notice"]


def test_a_key_inside_a_normal_reply_is_stored_masked(local_server, tmp_path,  # noqa: F811
                                                      monkeypatch):
    secret = "sk-transferscope-200-echo-91c2"
    monkeypatch.setenv("TS_TEST_API_KEY", secret)

    def models(path, headers):  # the key echoed in the model metadata too
        return 200, json.dumps({"data": [{"id": "m", "owner": headers.get("Authorization")}]}
                               ).encode()

    server = local_server(_reply("Your key is KEY."), models)
    backend = make_backend("openai:m", base_url=server.url, api_key_env="TS_TEST_API_KEY",
                           cache=tmp_path / "c.sqlite")
    reply = backend.chat([QUESTION], SETTINGS)[0]
    backend.close()
    assert reply.text == "Your key is Bearer ***." and secret not in backend.fingerprint
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in stored and b"Bearer ***" in stored
