"""Helpers of the lm-eval-harness task written by `transferscope bias export` (see the
YAML beside this file): the docs, our reply parser as a filter, and the scores."""

from pathlib import Path

from transferscope.bias.export.lm_eval_task import docs, parse_replies, process_results

def load_docs(**kwargs):
    return docs(Path(__file__).with_name("transferscope_items.jsonl"))


__all__ = ["load_docs", "parse_replies", "process_results"]
