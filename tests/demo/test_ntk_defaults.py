"""Defaults are validated configurations (issue #27): the demo's NTK stage and the CLI's
default parameter set are ones that `ntk validate` and the committed real fine-tuning table
cover, and the demo's worked example is at n >= 128."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from transferscope.demo.config import DemoConfig
from transferscope.demo.orchestrate import demo_stages
from transferscope.ntk import cli, pipeline
from transferscope.ntk.experiments.validate_run import VALIDATION_PROFILES

ROOT = Path(__file__).resolve().parents[2]


def test_demo_and_cli_defaults_are_what_the_validation_covers():
    (ntk,) = [s for s in demo_stages(DemoConfig(model="smollm2", encoder="minilm"))
              if s.name == "ntk"]
    params, n = ntk.settings["params"], ntk.settings["n"]
    assert n >= 128 and params == pipeline.DEFAULT_PARAMS
    default = inspect.signature(cli.kernel).parameters["params"].default.default  # typer's
    assert default == pipeline.DEFAULT_PARAMS == pipeline.KernelOptions().params
    full = VALIDATION_PROFILES["full"]
    assert full.params == params and n in full.held_out_sizes
    # the committed real fine-tuning table has runs of this set at this n on this task
    table = json.loads((ROOT / "examples/ntk/real-finetuning/table.json").read_text())
    assert any(r["params"] == params and r["n"] == n and r["task"] == ntk.settings["task"]
               for r in table["runs"])
