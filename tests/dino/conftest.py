"""DINO tests run on one torch thread (small matrices; on a shared 2-core box, OpenMP spin-waits
of a second thread made eigendecompositions 25x slower in our measurements). The setting is
restored after each test so the other parts' tests keep their threads."""

from types import SimpleNamespace

import pytest
import torch

from tests.cli_inprocess import invoke_cli


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def run(capsys, monkeypatch, tmp_path):
    """`transferscope dino ...` in-process, with its own cache folder: returncode, stdout, stderr."""
    monkeypatch.setenv("TRANSFERSCOPE_CACHE", str(tmp_path / "cache"))

    def _run(*args):
        code, out, err = invoke_cli(capsys, "dino", *args)
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return _run
