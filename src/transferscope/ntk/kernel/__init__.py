"""The eNTK engine: ``K_ij = <grad_S f(x_i), grad_S f(x_j)>`` of any ``torch.nn.Module``.

What to compute goes in the call (model, inputs, output function, parameter set, exact or
sketch); how, in one :class:`EngineOptions` (or its fields by name). Inside: ``capture`` (per-example
gradient factors of a block), ``gram`` (their exact float64 Gram), ``sketch`` (CountSketch and
its error), ``blocks`` (one block's work and the executor protocol), ``local`` (the resumable
run in its work directory), ``ray`` (the same blocks on a Ray cluster), ``empirical`` (the entry
points and their cache).
"""

from transferscope.ntk.kernel.blocks import BlockEngine, BlockExecutor, LocalExecutor
from transferscope.ntk.kernel.empirical import (
    KernelResult,
    batched_output,
    empirical_ntk,
    empirical_ntk_result,
    model_fingerprint,
)
from transferscope.ntk.kernel.options import EngineOptions
from transferscope.ntk.kernel.ray import RayExecutor, stop_workers

__all__ = [
    "BlockEngine",
    "BlockExecutor",
    "EngineOptions",
    "KernelResult",
    "LocalExecutor",
    "RayExecutor",
    "batched_output",
    "empirical_ntk",
    "empirical_ntk_result",
    "model_fingerprint",
    "stop_workers",
]
