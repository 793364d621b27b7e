"""Write a requantisation of the embedded SmolLM2 GGUF (Q4_1) with llama.cpp's own quantiser.

Why: the comparison in ``compare_models.sh`` needs several checkpoints, offline. Requantising
the one embedded model gives checkpoints of graded precision (Q4_1 > Q4_0 > Q2_K) whose
reasoning degrades in a known direction, which is what "better reasoning, less bias" asks about.
Usage: ``python examples/bias/requantize.py Q2_K out.gguf`` (any LLAMA_FTYPE_MOSTLY_* name).
"""

from __future__ import annotations

import ctypes
import sys
import time

import llama_cpp

from transferscope.core.models import embedded_gguf_path


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: requantize.py KIND OUT.gguf   (KIND e.g. Q4_0, Q2_K)")
    kind, out = sys.argv[1], sys.argv[2]
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}", None)
    if ftype is None:
        sys.exit(f"error: kind = {kind!r}: expected a llama.cpp type such as Q4_0, Q5_1, Q2_K")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True  # the source is already quantised (Q4_1)
    source = embedded_gguf_path()
    started = time.perf_counter()
    status = llama_cpp.llama_model_quantize(str(source).encode(), out.encode(),
                                            ctypes.byref(params))
    if status != 0:
        sys.exit(f"error: llama_model_quantize({source} -> {out}, {kind}) returned {status}")
    print(f"{source} -> {out} ({kind}) in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
