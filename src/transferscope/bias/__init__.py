"""transferscope.bias: nation-level bias tests of LLMs grounded in UN Security Council records."""

from transferscope.bias.data import P5, Record, build_record, load_record

__all__ = ["P5", "Record", "build_record", "load_record"]
