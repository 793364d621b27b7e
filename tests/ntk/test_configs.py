"""The configs of ``ntk spectrum | finetune | rates | taskvec | report`` (#29): every bad value
is one ValueError naming the class, the parameter and the value, raised when the config is
built (before any file is read or a model loads), and the light lists the help texts read
agree with the data module's registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from transferscope import ntk
from transferscope.core.errors import InputError
from transferscope.ntk import options

OUT = Path("runs/x")

BAD_VALUES = [
    # (class, keyword arguments, the start of the message)
    (ntk.RatesOptions, {"seeds": 1}, "RatesOptions: seeds = 1: expected a whole number"),
    (ntk.RatesOptions, {"seeds": 10_001}, "RatesOptions: seeds = 10001"),
    (ntk.RatesOptions, {"sizes": (8,)}, "RatesOptions: sizes = (8,): expected at least two"),
    (ntk.RatesOptions, {"sizes": (8, 8)}, "RatesOptions: sizes = (8, 8): expected at least two"),
    (ntk.RatesOptions, {"sizes": (2, 8)}, "RatesOptions: sizes = (2, 8): expected None or a "
                                          "sequence, each item a whole number >= 4"),
    (ntk.RatesOptions, {"sizes": "8,16"}, "RatesOptions: sizes = '8,16': expected None or a "
                                          "sequence"),
    (ntk.RatesOptions, {"sizes": (8, 16), "pool": 16}, "RatesOptions: pool = 16: expected a "
                                                        "whole number > 16"),
    (ntk.RatesOptions, {"pool": 5}, "RatesOptions: pool = 5: expected None or a whole number "
                                    ">= 6"),
    (ntk.RatesOptions, {"n_test": 0}, "RatesOptions: n_test = 0"),
    (ntk.RatesOptions, {"head_seed": -1}, "RatesOptions: head_seed = -1"),
    (ntk.RatesOptions, {"params": "last-0"}, "RatesOptions: params = 'last-0'"),
    (ntk.RatesOptions, {"device": "tpu"}, "RatesOptions: device = 'tpu': expected one of"),
    (ntk.TaskVectorOptions, {"tasks": ()}, "TaskVectorOptions: tasks = (): expected at least "
                                           "one built-in task"),
    (ntk.TaskVectorOptions, {"tasks": ("vader-words", "nope")},
     "TaskVectorOptions: tasks = ('vader-words', 'nope'): expected built-in tasks ('nope' is "
     "not one: afinn-words, "),
    (ntk.TaskVectorOptions, {"tasks": ("vader-words", "vader-words")},
     "TaskVectorOptions: tasks = ('vader-words', 'vader-words'): expected each task once"),
    (ntk.TaskVectorOptions, {"tasks": "vader-words,afinn-words"},
     "TaskVectorOptions: tasks = 'vader-words,afinn-words': expected a sequence"),
    (ntk.TaskVectorOptions, {"n_train": 1}, "TaskVectorOptions: n_train = 1"),
    (ntk.TaskVectorOptions, {"n_test": 0}, "TaskVectorOptions: n_test = 0"),
    (ntk.TaskVectorOptions, {"steps": 0}, "TaskVectorOptions: steps = 0"),
    (ntk.TaskVectorOptions, {"steps": 10**9}, "TaskVectorOptions: steps = 1000000000"),
    (ntk.TaskVectorOptions, {"seed": 2**63}, "TaskVectorOptions: seed = 9223372036854775808"),
    (ntk.TaskVectorOptions, {"n_train": 2.5}, "TaskVectorOptions: n_train = 2.5"),
    (ntk.DataSource, {"task": "nope"}, "DataSource: task = 'nope': expected one of "
                                       "afinn-words, "),
    (ntk.DataSource, {"label_words": "good"}, "DataSource: label_words = 'good': expected two "
                                              "different comma-separated words"),
    (ntk.DataSource, {"label_words": "good,good"}, "DataSource: label_words = 'good,good'"),
    (ntk.DataSource, {"text_col": 3}, "DataSource: text_col = 3: expected a string"),
    (ntk.DataSource, {"data_file": 3}, "DataSource: data_file = 3: expected None or a path"),
    (ntk.FinetuneOptions, {"n": 8, "pool": 4}, "FinetuneOptions: pool = 4: expected a whole "
                                               "number >= n = 8"),
    (ntk.FinetuneOptions, {"pool": 1}, "FinetuneOptions: pool = 1"),
    (ntk.SpectrumConfig, {"run_dir": 3}, "SpectrumConfig: run_dir = 3: expected a path"),
    (ntk.SpectrumConfig, {"run_dir": OUT, "options": {"n_boot": 10}},
     "SpectrumConfig: options = {'n_boot': 10}: expected a SpectrumOptions"),
    (ntk.FinetuneConfig, {"out": OUT, "model": None}, "FinetuneConfig: model = None"),
    (ntk.FinetuneConfig, {"out": OUT, "source": "vader-words"},
     "FinetuneConfig: source = 'vader-words': expected a DataSource"),
    (ntk.RatesConfig, {"out": OUT, "options": ntk.FinetuneOptions()},
     "RatesConfig: options = FinetuneOptions("),
    (ntk.TaskVectorConfig, {"out": OUT, "options": ntk.TaskVectorOptions(tasks=("vader-words",))},
     "TaskVectorConfig: tasks = ('vader-words',): expected at least two tasks"),
    (ntk.TaskVectorConfig, {"out": OUT, "data": "words.csv"},
     "TaskVectorConfig: data = 'words.csv': expected None or a DataSource"),
    (ntk.ReportConfig, {"out": OUT, "profile": "fast"},
     "ReportConfig: profile = 'fast': expected one of 'quick', 'full'"),
    (ntk.ReportConfig, {"out": OUT, "device": "gpu"}, "ReportConfig: device = 'gpu'"),
    (ntk.ReportConfig, {"out": None}, "ReportConfig: out = None: expected a path"),
    # a rule in a class body's annotation (this one raised NameError before #29's fix)
    (ntk.ValidateConfig, {"out": OUT, "params": "last-0"}, "ValidateConfig: params = 'last-0'"),
]


@pytest.mark.parametrize("cls, kwargs, message", BAD_VALUES,
                         ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _ in BAD_VALUES])
def test_a_bad_value_is_one_value_error_naming_the_parameter(cls, kwargs, message):
    with pytest.raises(ValueError) as caught:
        cls(**kwargs)
    assert isinstance(caught.value, InputError)
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_good_values_are_kept_as_given():
    rates = ntk.RatesOptions(sizes=(16, 8), seeds=2, pool=17, head_seed=None, device="cpu")
    assert rates.sample_sizes() == [8, 16] and rates.pool == 17 and rates.head_seed is None
    assert ntk.RatesOptions().sample_sizes() == list(options.DEFAULT_RATE_SIZES)
    tv = ntk.TaskVectorConfig(out=OUT, data=ntk.DataSource(data_file=Path("w.csv")),
                              options=ntk.TaskVectorOptions(tasks=("vader-words",)))
    assert tv.options.tasks == ("vader-words",)  # the file is the second task
    assert ntk.TaskVectorOptions().tasks == options.TASK_VECTOR_DEFAULTS
    assert ntk.SpectrumConfig(run_dir="r").options == ntk.SpectrumOptions()
    assert ntk.ReportConfig(out=OUT, profile="full").source == ntk.DataSource()


def test_the_light_task_lists_are_the_registry_s():
    """The help texts and checks read the task names without loading the data module: they
    are the names it registers, and a task a caller registers is accepted too."""
    from transferscope.ntk import data

    assert sorted(options.BUILTIN_TASKS) == sorted(data.TASKS)
    assert options.TASK_VECTOR_DEFAULTS == data.TASK_VECTOR_DEFAULTS
    assert all(name in data.TASKS for name in options.TASK_VECTOR_DEFAULTS)
    mine = data.BuiltinTask(name="my-words", description="test", template="{text}:",
                            label_words=("yes", "no"), load=data.vader_words)
    data.register_task(mine)
    try:
        assert ntk.DataSource(task="my-words").task == "my-words"
        assert ntk.TaskVectorOptions(tasks=("my-words", "vader-words")).tasks[0] == "my-words"
    finally:
        del data.TASKS["my-words"]
    with pytest.raises(InputError, match="'my-words'"):
        ntk.DataSource(task="my-words")


def test_each_command_has_one_entry_point_in_the_public_api():
    """``run_X(XConfig)`` for every command, exported lazily by ``transferscope.ntk``."""
    import inspect

    entry = {"run_kernel": ntk.KernelConfig, "run_spectrum": ntk.SpectrumConfig,
             "run_stop": ntk.StopConfig, "run_finetune": ntk.FinetuneConfig,
             "run_rates": ntk.RatesConfig, "run_taskvec": ntk.TaskVectorConfig,
             "run_report": ntk.ReportConfig, "run_validation": ntk.ValidateConfig}
    for name, config in entry.items():
        assert name in ntk.__all__ and config.__name__ in ntk.__all__
        first = next(iter(inspect.signature(getattr(ntk, name)).parameters.values()))
        assert first.name == "config" and first.annotation in (config, config.__name__), name


def test_a_bad_source_or_device_stops_a_run_before_its_output_or_model(tmp_path, monkeypatch):
    """The checks the command line used to run first now run inside the entry points: a data
    file without its template, or CUDA where there is none, is refused before the output
    folder is claimed (created) or a model is loaded."""
    import torch

    from transferscope.ntk import task as ntk_task

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the checks")

    monkeypatch.setattr(ntk_task, "_load", no_model)
    (tmp_path / "d.csv").write_text("text,label\ngood,1\nbad,0\n")
    no_template = ntk.DataSource(data_file=tmp_path / "d.csv", label_words="positive,negative")
    out = tmp_path / "out"
    runs = [
        lambda: ntk.run_finetune(ntk.FinetuneConfig(out=out, source=no_template)),
        lambda: ntk.run_rates(ntk.RatesConfig(out=out, source=no_template)),
        lambda: ntk.run_taskvec(ntk.TaskVectorConfig(out=out, data=no_template)),
        lambda: ntk.run_report(ntk.ReportConfig(out=out, source=no_template)),
    ]
    for run in runs:
        with pytest.raises(InputError, match="--template"):
            run()
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device = 'cuda'"):
            ntk.run_rates(ntk.RatesConfig(out=out, options=ntk.RatesOptions(device="cuda")))
    assert not out.exists()


def test_the_demo_fine_tunes_on_the_quick_report_s_pool():
    """The demo's ``run_finetune`` config draws the pool ``ntk report --quick`` draws (same
    sizes and seed, so the same texts and the same cached kernel)."""
    from transferscope.ntk import data
    from transferscope.ntk.experiments.profiles import PROFILES, quick_finetune_config

    config = quick_finetune_config("runs/demo", model="smollm2", task="vader-words")
    quick = PROFILES["quick"]
    fitted = config.options.fit(data.get_task("vader-words"))
    assert config.source == ntk.DataSource(task="vader-words")
    assert (fitted.pool, fitted.n_test, fitted.seed) == (quick.pool, quick.test_n, 0)
    assert (fitted.n, fitted.steps, fitted.params) == (quick.finetune_n, quick.steps,
                                                       quick.params)
