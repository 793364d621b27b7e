"""The three registered bias tests of the spec: DirectQA, Association Test, vote simulation."""

from transferscope.bias.probes.base import Answer, Item, Probe, parse_choice
from transferscope.bias.probes.registry import PROBES, get_probe, parse_tests

__all__ = ["PROBES", "Answer", "Item", "Probe", "get_probe", "parse_choice", "parse_tests"]
