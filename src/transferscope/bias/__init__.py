"""transferscope.bias: nation-level bias tests of LLMs grounded in UN Security Council records.

Entry points, as the command line uses them: :func:`build_data` (the record),
:func:`evaluate` (a backend you hold or a spec -> answers and the scores table),
:func:`evaluate_run` (``bias run``: one model's run folder), :func:`run_probes`,
:func:`write_report`, :func:`null_calibration` and :func:`planted_power` (the checks
that the scores read 0 without an opinion and recover a planted bias), :func:`debias`
(baseline and debiased runs; :func:`run_debias` and :func:`debias_items` on a backend you
hold) and :func:`compare_models`. Backends come from :func:`make_backend` (a spec string:
``hf-local:smollm2``, ``openai:<model>``, ``null:random``); :class:`Backend` is the extension
point: a subclass of your own works with :func:`evaluate`. :func:`load_items` reads an items
file (``--items``; schema in :mod:`transferscope.bias.items`), :func:`write_items` writes one,
:func:`export_items` writes its items as an inspect_ai or lm-eval-harness task.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transferscope.bias.backends import (
        Backend,
        BackendOptions,
        GenerationSettings,
        make_backend,
        make_ray_backend,
        open_backend,
    )
    from transferscope.bias.calibrate import (
        EFFECTS,
        PowerResult,
        beside_nulls,
        claim_shares,
        null_calibration,
        null_coverage,
        planted_answers,
        planted_power,
        planted_spillover,
        write_calibration,
    )
    from transferscope.bias.data import P5, Record, build_data, build_record, load_record
    from transferscope.bias.debias.compare import ModelComparison, compare_models
    from transferscope.bias.debias.items import BeforeAfter, debias_items
    from transferscope.bias.debias.pipeline import DebiasConfig, DebiasResult, debias, run_debias
    from transferscope.bias.evaluate import (
        Evaluation,
        RunConfig,
        evaluate,
        evaluate_run,
        run_probes,
    )
    from transferscope.bias.export import ExportResult, export_items
    from transferscope.bias.items import load_items, write_items
    from transferscope.bias.probes import Probe, parse_tests
    from transferscope.bias.report import write_report
else:
    from transferscope.core.lazy import lazy_exports

    lazy_exports(__name__)

__all__ = [
    "EFFECTS",
    "P5",
    "PowerResult",
    "beside_nulls",
    "claim_shares",
    "null_calibration",
    "null_coverage",
    "planted_answers",
    "planted_power",
    "planted_spillover",
    "write_calibration",
    "Backend",
    "BackendOptions",
    "BeforeAfter",
    "DebiasConfig",
    "DebiasResult",
    "Evaluation",
    "ExportResult",
    "GenerationSettings",
    "ModelComparison",
    "Probe",
    "Record",
    "RunConfig",
    "build_data",
    "build_record",
    "compare_models",
    "debias",
    "debias_items",
    "evaluate",
    "evaluate_run",
    "export_items",
    "load_items",
    "load_record",
    "make_backend",
    "make_ray_backend",
    "open_backend",
    "parse_tests",
    "run_debias",
    "run_probes",
    "write_items",
    "write_report",
]
