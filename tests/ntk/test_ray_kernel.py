"""The eNTK on a local two-CPU Ray cluster against the local engine and a brute-force Jacobian.

Real Ray (actors in their own processes), the small double-precision attention model of
test_kernel.py; the fault test really kills a worker actor mid-run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from transferscope.core.errors import InputError
from transferscope.ntk import empirical_ntk, empirical_ntk_result
from transferscope.ntk.params import select_parameters

ray = pytest.importorskip("ray")

from tests.ntk.test_kernel import (  # noqa: E402
    TinyAttentionLM,
    batch_output,
    brute_force_jacobian,
    one_output,
)
from transferscope.ntk.kernel import EngineOptions, RayExecutor  # noqa: E402
from transferscope.ntk.kernel.local import PAIR_GRAM_STATE, KernelDriver  # noqa: E402
from transferscope.ntk.kernel.ray import stop_workers, worker_pool  # noqa: E402


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def model():
    return TinyAttentionLM(dim=16)


@pytest.fixture(scope="module")
def data():
    return torch.randint(0, 23, (13, 7), generator=torch.Generator().manual_seed(3))


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_exact_on_ray_equals_local_and_brute_force(ray_cluster, model, data):
    reference = brute_force_jacobian(model, data, one_output, "all")
    local = empirical_ntk(model, data, batch_output, "all", block_size=3, progress=False)
    result = empirical_ntk_result(model, data, batch_output, "all", block_size=3,
                                  progress=False, executor="ray")
    assert result.details["executor"]["workers"] == 2
    assert np.array_equal(result.kernel, result.kernel.T)
    assert max_rel(result.kernel, local) < 1e-10
    assert max_rel(result.kernel, reference @ reference.T) < 1e-8


def test_cross_kernel_on_ray_equals_local(ray_cluster, model, data):
    local = empirical_ntk(model, data[:8], batch_output, "attention", inputs2=data[8:],
                          block_size=3, progress=False)
    remote = empirical_ntk(model, data[:8], batch_output, "attention", inputs2=data[8:],
                           block_size=3, progress=False, executor=RayExecutor(workers=2))
    assert remote.shape == (8, 5)
    assert max_rel(remote, local) < 1e-10


def test_sketch_on_ray_equals_local(ray_cluster, model, data):
    local = empirical_ntk_result(model, data, batch_output, "all", mode="sketch",
                                 sketch_dim=128, seed=4, block_size=4, progress=False)
    remote = empirical_ntk_result(model, data, batch_output, "all", mode="sketch",
                                  sketch_dim=128, seed=4, block_size=4, progress=False,
                                  executor="ray")
    assert max_rel(remote.kernel, local.kernel) < 1e-10
    assert remote.error_bound == pytest.approx(local.error_bound, rel=1e-10)


def test_model_factory_builds_each_worker_its_own_model(ray_cluster, model, data):
    """Workers rebuild the model from a picklable factory instead of receiving the module."""
    local = empirical_ntk(model, data, batch_output, "attention", block_size=5, progress=False)
    executor = RayExecutor(workers=2, model_factory=_tiny_model_and_output)
    remote = empirical_ntk(model, data, batch_output, "attention", block_size=5,
                           progress=False, executor=executor)
    assert max_rel(remote, local) < 1e-10


def _tiny_model_and_output():
    return TinyAttentionLM(dim=16), batch_output


def _run(model, work: Path, executor: RayExecutor) -> KernelDriver:
    return KernelDriver(model, batch_output, select_parameters(model, "all"), "exact", work,
                     EngineOptions(block_size=3, progress=False, executor=executor))


def test_resume_recomputes_only_what_is_missing(ray_cluster, model, data, tmp_path):
    local = empirical_ntk(model, data, batch_output, "all", block_size=3, progress=False)
    work = tmp_path / "work"
    first = _run(model, work, RayExecutor(workers=2))
    kernel, _ = first.compute(data, None)
    assert first.finished == {"capture": 5, "gram": 15}  # 5 blocks, 5 * 6 / 2 pairs
    # lose one capture block and two thirds of the Gram progress, as an interrupted run would
    (work / "x-00002.pt").unlink()
    state = json.loads((work / PAIR_GRAM_STATE).read_text())
    state["done"] = state["done"][:5]
    (work / PAIR_GRAM_STATE).write_text(json.dumps(state))
    again = _run(model, work, RayExecutor(workers=2))
    resumed, _ = again.compute(data, None)
    assert again.finished == {"capture": 1, "gram": 10}
    assert max_rel(resumed, local) < 1e-10 and max_rel(kernel, local) < 1e-10


def test_killed_workers_lose_nothing_finished(ray_cluster, model, data, tmp_path):
    """Both worker actors killed (with calls in flight) after the first finished block: Ray
    restarts them, they rebuild their model and retry; every block and pair arrives exactly
    once and the kernel is unchanged."""
    local = empirical_ntk(model, data, batch_output, "all", block_size=3, progress=False)
    executor = RayExecutor(workers=2)
    pool = worker_pool(ray, executor)
    pids_before = ray.get([actor.pid.remote() for actor in pool])
    work = tmp_path / "work"
    run = _run(model, work, executor)
    killed: list[str] = []

    def kill_once(method: str, key) -> None:
        if not killed:
            for actor in executor.actors:
                ray.kill(actor, no_restart=False)
            killed.append(method)

    run.on_finished = kill_once
    kernel, _ = run.compute(data, None)
    assert killed == ["capture"]
    pids_after = ray.get([actor.pid.remote() for actor in pool])
    assert not set(pids_before) & set(pids_after)  # new worker processes
    assert run.finished == {"capture": 5, "gram": 15}
    assert sorted(p.name for p in work.glob("x-*.pt")) == [f"x-{k:05d}.pt" for k in range(5)]
    assert max_rel(kernel, local) < 1e-10
    stop_workers()  # the two CPUs the workers held are free again
    assert _cpus_back_within(10.0)


def _cpus_back_within(seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if ray.available_resources().get("CPU", 0) >= 2.0:
            return True
        time.sleep(0.2)
    return False


def test_unknown_executor_is_one_clear_error(model, data):
    with pytest.raises(InputError, match="executor = 'dask'"):
        empirical_ntk(model, data, batch_output, "all", progress=False, executor="dask")


@pytest.mark.parametrize("extra, expected", [
    (["--executor", "dask"], "error: --executor = 'dask': expected one of 'local', 'ray'"),
    (["--address", "auto"], "error: --address/--workers: given with --executor local"),
])
def test_cli_executor_errors_before_loading_anything(extra, expected, tmp_path, capsys,
                                                     monkeypatch):
    from transferscope.cli import main

    monkeypatch.setattr(sys, "argv", ["transferscope", "ntk", "kernel", "--out",
                                      str(tmp_path / "run"), *extra])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_.value.code != 0 and err.startswith(expected) and "\n" not in err
    assert not (tmp_path / "run").exists()
