"""transferscope.bias: nation-level bias tests of LLMs grounded in UN Security Council records.

One entry point per operation, a config in and a result out:

- ``bias run``: :func:`run_evaluation` (:class:`RunConfig` -> :class:`Evaluation`; the backend
  the config names, or one you hold); :func:`evaluate` is the same call with keywords;
- ``bias calibrate``: :func:`run_calibration` (:class:`CalibrateConfig` ->
  :class:`Calibration`): answerers with no opinion score 0, a planted bias is found;
- ``bias debias``: :func:`debias` (:class:`DebiasConfig` -> :class:`DebiasResult`);
  :func:`debias_items` on a backend you hold;
- ``bias compare``: :func:`compare_models` (:class:`CompareConfig` -> :class:`ModelComparison`);
- ``bias report`` / ``show`` / ``build-data``: :func:`write_report`, :func:`show_run`,
  :func:`build_data`.

The settings each config declares are checked when it is constructed (``bias.config``).
Backends come from :func:`make_backend` (a spec string: ``hf-local:smollm2``,
``openai:<model>``, ``null:random``); :class:`Backend` is the extension point: a subclass of
your own works with :func:`run_evaluation`. :func:`load_items` reads an items file
(``--items``; schema in :mod:`transferscope.bias.items`), :func:`write_items` writes one,
:func:`unbench_items` converts a UNBench checkout (:func:`import_unbench` also writes it,
``bias import-unbench``),
:func:`export_items` writes items as an inspect_ai or lm-eval-harness task (``bias export``).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transferscope.bias.adapters.unbench import import_unbench, unbench_items
    from transferscope.bias.backends import (
        Backend,
        GenerationSettings,
        make_backend,
        make_ray_backend,
    )
    from transferscope.bias.calibrate import (
        Calibration,
        PowerResult,
        beside_nulls,
        null_calibration,
        run_calibration,
    )
    from transferscope.bias.config import (
        BackendOptions,
        CalibrateConfig,
        CompareConfig,
        DebiasConfig,
        ItemOptions,
        ModelOptions,
        RunConfig,
    )
    from transferscope.bias.data import P5, Record, build_data, load_record
    from transferscope.bias.debias.compare import ModelComparison, compare_models
    from transferscope.bias.debias.items import BeforeAfter, debias_items
    from transferscope.bias.debias.pipeline import DebiasResult, debias
    from transferscope.bias.evaluate import Evaluation, evaluate, run_evaluation
    from transferscope.bias.export import ExportResult, export_items
    from transferscope.bias.items import load_items, write_items
    from transferscope.bias.probes import Probe, parse_tests
    from transferscope.bias.report import write_report
    from transferscope.bias.show import RunView, show_run
else:
    from transferscope.core.lazy import lazy_exports

    lazy_exports(__name__)

__all__ = [
    "P5",
    "Backend",
    "BackendOptions",
    "BeforeAfter",
    "CalibrateConfig",
    "Calibration",
    "CompareConfig",
    "DebiasConfig",
    "DebiasResult",
    "Evaluation",
    "ExportResult",
    "GenerationSettings",
    "ItemOptions",
    "ModelComparison",
    "ModelOptions",
    "PowerResult",
    "Probe",
    "Record",
    "RunConfig",
    "RunView",
    "beside_nulls",
    "build_data",
    "compare_models",
    "debias",
    "debias_items",
    "evaluate",
    "export_items",
    "import_unbench",
    "load_items",
    "load_record",
    "make_backend",
    "make_ray_backend",
    "null_calibration",
    "parse_tests",
    "run_calibration",
    "run_evaluation",
    "show_run",
    "unbench_items",
    "write_items",
    "write_report",
]
