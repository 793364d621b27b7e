"""The bias configs (#29): each parameter declared once, checked at construction with one line
naming the class, the parameter and the value; the run and debias configs share their groups;
the command line's options read the same declarations; an items file is read once per run."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import sys

import pytest

from transferscope.bias.backends.base import GenerationSettings
from transferscope.bias.config import (
    BackendOptions,
    CalibrateConfig,
    DebiasConfig,
    ItemOptions,
    ModelOptions,
    RunConfig,
)
from transferscope.bias.items import write_items
from transferscope.core.errors import InputError
from transferscope.core.params import declarations

evaluate_module = importlib.import_module("transferscope.bias.evaluate")


@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (RunConfig, {"n_boot": 5}, "RunConfig: n_boot = 5: expected a whole number >= 10"),
    (RunConfig, {"adjust": "bonferroni"}, "RunConfig: adjust = 'bonferroni': expected one of "
     "'holm', 'bh'"),
    (RunConfig, {"tests": "vote,bogus"}, "'bogus' is none of them"),
    (RunConfig, {"tests": "vote,vote"}, "each once"),
    (RunConfig, {"drafts_per_nation": 0}, "drafts_per_nation = 0: expected None or a whole"),
    (RunConfig, {"temperature": 2.5}, "temperature = 2.5: expected a finite number >= 0 and "
     "<= 2"),
    (RunConfig, {"seed": 2**63}, "a whole number from 0 to 2**63 - 1"),
    (RunConfig, {"samples": 3}, "--samples: samples = 3: expected 1 with --temperature 0"),
    (DebiasConfig, {"method": "rank"}, "DebiasConfig: method = 'rank': expected one of"),
    (DebiasConfig, {"memory_size": 0}, "memory_size = 0: expected a whole number >= 1"),
    (BackendOptions, {"timeout_s": 0.0}, "BackendOptions: timeout_s = 0.0: expected a finite "
     "number > 0 and <= 3600"),
    (BackendOptions, {"executor": "slurm"}, "executor = 'slurm'"),
    (BackendOptions, {"workers": 0}, "workers = 0"),
    (CalibrateConfig, {"planted": 0.6}, "planted = 0.6: expected a finite number >= 0 and <= "
     "0.5"),
    (GenerationSettings, {"stop": "\n"}, "GenerationSettings: stop = "),
])
def test_a_bad_value_is_one_error_naming_class_parameter_and_value(cls, kwargs, message):
    with pytest.raises(InputError) as err:
        cls(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_defaults_are_valid_and_keyword_only():
    for cls in (RunConfig, DebiasConfig, BackendOptions, CalibrateConfig, GenerationSettings):
        cls()
        with pytest.raises(TypeError):
            cls("positional")


def test_run_and_debias_share_their_groups_declared_once():
    shared = set(declarations(ModelOptions)) | set(declarations(ItemOptions))
    assert shared == {"model", "base_url", "api_key_env", "concurrency", "tests",
                      "drafts_per_nation", "seed", "n_boot", "record", "items"}
    for cls in (RunConfig, DebiasConfig):
        assert shared <= set(declarations(cls))
        for name in shared:  # the group's declaration, not a copy of it
            assert declarations(cls)[name] == declarations(_group(name))[name]
    debias = DebiasConfig(model="null:constant", tests="vote", drafts_per_nation=6, seed=3,
                          n_boot=50, concurrency=2, method="rag", top_k=2)
    baseline = debias.run_config()
    assert {n: getattr(baseline, n) for n in shared} == {n: getattr(debias, n) for n in shared}
    # what the baseline's run.json records: the shared fields, every other one at its default
    others = {f.name for f in dataclasses.fields(RunConfig)} - shared
    assert all(getattr(baseline, n) == getattr(RunConfig(), n) for n in others)


def _group(name: str) -> type:
    return ModelOptions if name in declarations(ModelOptions) else ItemOptions


def test_the_recorded_config_is_plain_json():
    """``run.json``'s ``config`` is ``asdict(RunConfig)``: choices stay plain strings."""
    config = RunConfig(adjust="bh", option_scoring="sum", drafts_per_nation=6)
    recorded = json.loads(json.dumps(dataclasses.asdict(config)))
    assert recorded["adjust"] == "bh" and recorded["option_scoring"] == "sum"
    assert RunConfig(**recorded) == config


_OPENED: list[str] | None = None  # the files Python opens while a test listens


def _count_opens(event: str, args: tuple) -> None:
    """An audit hook (every ``open``, by any reader: builtins, pathlib, pandas, gzip): the
    paths opened while :data:`_OPENED` is a list."""
    if event == "open" and _OPENED is not None and isinstance(args[0], str | bytes | os.PathLike):
        _OPENED.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_count_opens)  # a hook stays for the process; it records only while listening


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_an_items_file_is_read_once_and_hashed_from_those_bytes(suffix, tmp_path):
    """One open of the items file per run (the old code opened a CSV three times: layout
    check, parse, hash), and run.json's hash is the sha256 of the file's bytes."""
    global _OPENED
    rows = [{"id": f"{d}/{n}", "test": "vote", "nation": n, "date": "2020-01-01", "draft": d,
             "text": f"Draft {d}.", "gold": "in favour"}
            for d in ("a", "b", "c") for n in ("China", "France")]
    path = write_items(tmp_path / f"items{suffix}", rows)
    config = RunConfig(model="null:constant", tests="vote", items=str(path), n_boot=10)
    _OPENED = []
    try:
        result = evaluate_module.run_evaluation(config, tmp_path / "run",
                                                options=BackendOptions(cache=False))
        opened = _OPENED.count(os.path.realpath(path))
    finally:
        _OPENED = None
    assert opened == 1
    summary = json.loads((tmp_path / "run" / "run.json").read_text("utf-8"))
    assert summary["provenance"]["items_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(result.answers) == len(rows)
