"""Bias runs on a local two-CPU Ray cluster against the same run in this process.

Real parts only: the embedded SmolLM2 (hf-local, one replica per worker) and the real llama.cpp
server of conftest.py (openai-compatible, concurrency budget split over the workers); the fault
test really kills the worker actors while the run is going on.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from transferscope.bias.backends.registry import make_backend
from transferscope.bias.evaluate import RunConfig, run_evaluation
from transferscope.bias.items import write_items
from transferscope.cli import main

ray = pytest.importorskip("ray")

from transferscope.bias.backends.ray_pool import make_ray_backend  # noqa: E402


def _vote_file(tmp_path: Path, n: int) -> Path:
    """``n`` vote items, five members per draft (role form), as an items file."""
    members = ("China", "France", "Russia", "United Kingdom", "United States")
    return write_items(tmp_path / f"votes-{n}.jsonl", [
        {"id": f"d{k // 5}/{members[k % 5]}", "test": "vote", "nation": members[k % 5],
         "date": f"19{60 + k // 5}-05-01", "draft": f"d{k // 5}",
         "text": f"Draft {k // 5} on the situation in region {k // 5}.",
         "gold": "in favour"} for k in range(n)])


def rows(cache: Path) -> int:
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def choices(run_dir: Path) -> list[tuple[str, object]]:
    lines = (run_dir / "answers.jsonl").read_text("utf-8").splitlines()
    return [(r["item_id"], r["choice"]) for r in map(json.loads, lines)]


@pytest.mark.slow  # about 110 s on the shared 2-core machine (two model loads, local run too)
def test_hf_local_on_ray_gives_the_local_scores(ray_cluster, tmp_path, one_torch_thread):
    """Vote items from a file (option log-likelihoods), 20 items: two SmolLM2 replicas on Ray
    answer exactly as the model in this process does, and each request reaches a model once."""
    config = RunConfig(model="hf-local:smollm2", tests="vote", n_boot=200,
                       items=str(_vote_file(tmp_path, 20)))
    local = make_backend("hf-local:smollm2", cache=tmp_path / "local.sqlite")
    local_scores = run_evaluation(config, tmp_path / "local", backend=local).scores
    remote = make_ray_backend("hf-local:smollm2", workers=2, cache=tmp_path / "ray.sqlite")
    try:
        ray_scores = run_evaluation(config, tmp_path / "ray", backend=remote).scores
    finally:
        remote.close()
    pd.testing.assert_frame_equal(ray_scores, local_scores)
    assert choices(tmp_path / "ray") == choices(tmp_path / "local")
    assert remote.stats.model_calls == local.stats.model_calls == 20
    assert rows(tmp_path / "ray.sqlite") == rows(tmp_path / "local.sqlite") == 20


@pytest.mark.slow  # about 5 min on the shared 2-core machine (one-thread llama.cpp server)
def test_cli_on_ray_with_killed_workers_loses_nothing(ray_cluster, tmp_path, llama_server,
                                                      monkeypatch, capsys):
    """`bias run --executor ray` on a real llama.cpp server: both workers are killed once the
    first answers are cached; Ray restarts them, the unfinished shards are retried, and the run
    ends with the local run's scores, every request answered once and stored once."""
    common = ["bias", "run", "--model", "openai:smollm2", "--base-url", llama_server,
              "--tests", "vote", "--drafts-per-nation", "1", "--n-boot", "100",
              "--concurrency", "2", "--option-scoring", "generate"]  # greedy text: cache-proof

    def cli(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["transferscope", *common, *args])
        capsys.readouterr()
        main()
        return capsys.readouterr().out

    local_out = cli("--cache", str(tmp_path / "local.sqlite"), "--out", str(tmp_path / "local"))
    assert "model calls: 20," in local_out

    cache = tmp_path / "ray.sqlite"
    killed: dict[str, object] = {}

    def kill_when_first_answers_are_cached() -> None:
        deadline = time.time() + 300
        while time.time() < deadline:
            if cache.exists() and rows(cache) > 0:
                pids = _backend_worker_pids()
                killed["rows_at_kill"] = rows(cache)
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed["count"] = len(pids)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_first_answers_are_cached)
    killer.start()
    ray_out = cli("--executor", "ray", "--workers", "2", "--cache", str(cache), "--out",
                  str(tmp_path / "ray"))
    killer.join()
    assert killed.get("count") == 2 and killed["rows_at_kill"] < 20
    assert "model calls: 20," in ray_out
    assert rows(cache) == 20
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ray" / "scores.csv"),
                                  pd.read_csv(tmp_path / "local" / "scores.csv"))
    assert choices(tmp_path / "ray") == choices(tmp_path / "local")


def test_one_killed_worker_mid_shard_loses_nothing(ray_cluster, tmp_path, llama_server):
    """The fast version of the two tests above: two vote items over HTTP to the real llama.cpp
    server, one Ray worker, killed (SIGKILL) while its shard is in flight (it holds an open
    connection to the server and nothing is cached yet). Ray restarts it, the shard is
    retried, and the run ends with the local run's scores and answers, each request stored
    once and counted once."""
    config = RunConfig(model="openai:smollm2", tests="vote", n_boot=20,
                       items=str(_vote_file(tmp_path, 2)), base_url=llama_server,
                       concurrency=1, option_scoring="generate")  # greedy text: the same
    # whichever run asks first (llama.cpp's log-probabilities of a prompt it has cached differ)
    local = make_backend("openai:smollm2", base_url=llama_server, concurrency=1,
                         cache=tmp_path / "local.sqlite")
    local_scores = run_evaluation(config, tmp_path / "local", backend=local).scores
    cache = tmp_path / "ray.sqlite"
    remote = make_ray_backend("openai:smollm2", workers=1, base_url=llama_server,
                              concurrency=1, cache=cache)
    port = int(llama_server.rsplit(":", 1)[1].split("/")[0])
    actor = remote.inner.actors[0]
    pid = ray.get(actor.pid.remote())
    killed: dict[str, object] = {}

    def kill_mid_shard() -> None:
        deadline = time.time() + 300
        while time.time() < deadline:
            if _connected(pid, port):
                killed["rows"] = rows(cache) if cache.exists() else 0
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_mid_shard)
    killer.start()
    try:
        ray_scores = run_evaluation(config, tmp_path / "ray", backend=remote).scores
        restarted = ray.get(actor.pid.remote())
    finally:
        killer.join()
        remote.close()
    assert killed == {"rows": 0} and restarted != pid  # killed in flight, then restarted
    pd.testing.assert_frame_equal(ray_scores, local_scores)
    assert choices(tmp_path / "ray") == choices(tmp_path / "local")
    assert remote.stats.model_calls == local.stats.model_calls == 2
    assert rows(cache) == rows(tmp_path / "local.sqlite") == 2


def _connected(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds an established TCP connection to local ``port``."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
                  for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                return True
    return False


def _backend_worker_pids() -> list[int]:
    """Pids of this session's Ray worker processes running a BackendWorker actor (their
    process title is ray::BackendWorker...; a descendant of this process: our own cluster)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith("ray::BackendWorker") and _descends_from_us(int(entry.name)):
            found.append(int(entry.name))
    return found


def _descends_from_us(pid: int) -> bool:
    for _ in range(4):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == os.getpid():
            return True
    return False


@pytest.mark.parametrize("command", ["run", "debias"])
def test_cli_executor_errors(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["transferscope", "bias", command, "--out",
                                      str(tmp_path / "run"), "--executor", "spark"])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_.value.code != 0
    assert err == "error: --executor = 'spark': expected one of 'local', 'ray'"
