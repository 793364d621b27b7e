"""DINO tests run on one torch thread (small matrices; on a shared 2-core box, OpenMP spin-waits
of a second thread made eigendecompositions 25x slower in our measurements). The setting is
restored after each test so the other parts' tests keep their threads."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
