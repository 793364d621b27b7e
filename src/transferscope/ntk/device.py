"""Where the model runs: ``--device auto|cpu|cuda`` of every ``ntk`` command.

``auto`` takes CUDA when PyTorch sees it. Asking for ``cuda`` on a machine without it is one
InputError line, raised before any model is loaded (a fallback to the CPU would turn a
minutes-long GPU run into hours without saying so).
"""

from __future__ import annotations

import torch

from transferscope.core.errors import InputError, input_error
from transferscope.ntk.options import DEVICES

__all__ = ["DEVICES", "resolve_device"]


def resolve_device(device: str = "auto") -> str:
    """``'cpu'`` or ``'cuda'`` for ``device`` (one of :data:`DEVICES`)."""
    if device not in DEVICES:
        raise input_error("--device", "device", device, "auto, cpu or cuda")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device: device = 'cuda': this machine has no CUDA device that "
                         "PyTorch can use: expected --device cpu or auto")
    return device
