"""DINO tests: one torch thread (small matrices; on a shared 2-core box, OpenMP spin-waits of a
second thread made eigendecompositions 25x slower in our measurements)."""

import torch

torch.set_num_threads(1)
