"""``ntk validate``: every stopping rule against planted truths and real held-out optima.

One real eNTK over a pool of labelled examples (a built-in task or the user's file, cached by
the engine) feeds both halves of :mod:`transferscope.ntk.validate`: (a) planted targets on the
synthetic spectra and on this kernel, (b) random training splits of the pool with the rest held
out. Writes ``validate.json`` and ``validate.md`` (the share-captured tables).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from transferscope.core.errors import input_error
from transferscope.core.io import atomic_write_bytes, write_json
from transferscope.core.progress import step_progress
from transferscope.ntk import data as ntk_data
from transferscope.ntk import validate
from transferscope.ntk.experiments.finetune import parameter_spec
from transferscope.ntk.pipeline import DataSource, load_examples
from transferscope.ntk.recommend import DEFAULT_RULE, RULES
from transferscope.ntk.task import PromptTask, check_template


@dataclass(frozen=True)
class ValidationProfile:
    """Sizes of both halves: >= 100 planted problems, >= 10 splits per n."""

    params: str
    pool: int
    held_out_sizes: tuple[int, ...]
    splits: int
    planted_sizes: tuple[int, ...]
    repeats: int
    seed: int = 0


VALIDATION_PROFILES = {
    "quick": ValidationProfile("attention@last-1", 192, (32, 64, 128), 10, (64,), 5),
    "full": ValidationProfile("attention@last-1", 256, (32, 64, 128, 192), 20, (64, 128, 256),
                              5),
}


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.3f}"


def _markdown(title: str, rows: list[dict], group: str | None) -> list[str]:
    head = ([group] if group else []) + ["rule", "problems", "median share [95% CI]",
                                          "10th pct", "worst", "median steps", "median T_opt"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in rows:
        lo, hi = r["median_ci"]
        cells = ([str(r[group])] if group else []) + [
            r["rule"] + (" (default)" if r["rule"] == DEFAULT_RULE else ""),
            f"{r['problems']}" + (f" ({r['no_gain']} no gain)" if r["no_gain"] else ""),
            f"{_fmt(r['median_share'])} [{_fmt(lo)}, {_fmt(hi)}]", _fmt(r["p10_share"]),
            _fmt(r["worst_share"]), f"{r['median_steps']:.0f}", f"{r['median_t_opt']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def run_validation(out: str | Path, profile: str = "quick", model: str = "smollm2",
                   source: DataSource = DataSource(), progress: bool = True) -> dict:
    """Both halves under ``profile``; returns what ``validate.json`` holds."""
    if profile not in VALIDATION_PROFILES:
        raise input_error("--profile", "profile", profile, "quick or full")
    prof = VALIDATION_PROFILES[profile]
    out = Path(out)
    started = time.time()
    examples = load_examples(source)
    check_template(examples.template)
    pool_n = min(prof.pool, len(examples.data) - len(examples.data) % 2)
    sizes = tuple(n for n in prof.held_out_sizes if n <= pool_n - 8)
    if not sizes:
        raise input_error("--data", "rows", len(examples.data),
                          f"at least {prof.held_out_sizes[0] + 8} labelled examples")
    sample = ntk_data.sample_examples(examples.data, pool_n, prof.seed)
    task = PromptTask(examples.template, list(examples.label_words), model=model)
    texts = list(sample.texts)
    kernel = task.kernel(texts, parameter_spec(task, prof.params), progress=progress).kernel
    f0 = task.outputs(texts).astype(np.float64)
    y = sample.targets.astype(np.float64)
    name = f"{model} eNTK"
    n_planted = (len(validate.SPECTRA) + 1) * len(prof.planted_sizes) * 4 * prof.repeats
    with step_progress("planted truths", n_planted, progress) as advance:
        planted = validate.planted_truths({name: kernel}, prof.planted_sizes,
                                          repeats=prof.repeats, seed=prof.seed,
                                          progress=advance)
    with step_progress("held-out splits", len(sizes) * prof.splits, progress) as advance:
        held = validate.held_out_truths(kernel, f0, y, sizes, prof.splits, prof.seed,
                                        progress=advance)
    command = f"transferscope ntk validate --{profile} --model {model}" + (
        f" --data {source.data_file} --text-col {source.text_col} --label-col "
        f"{source.label_col} --template '{examples.template}' --label-words "
        f"'{','.join(examples.label_words)}'" if source.data_file is not None
        else f" --task {source.task or 'sentiment-words'}") + f" --out {out}"
    result = {
        "command": command,
        "profile": profile, "settings": asdict(prof), "model": model, "source": sample.source,
        "template": examples.template, "label_words": list(examples.label_words),
        "pool": pool_n, "held_out_sizes": list(sizes), "rules": list(RULES),
        "default_rule": DEFAULT_RULE,
        "share": "(e(0) - e(T)) / (e(0) - e(T_opt)); e = error of the kernel trajectory "
                 "(planted: against f* on the training points; real: held-out squared error)",
        "planted": {"overall": validate.share_table(planted),
                    "by_source": validate.share_table(planted, "source"),
                    "by_signal": validate.share_table(planted, "signal"),
                    "recovery": validate.recovery_table(planted),
                    "problems": [asdict(o) for o in planted]},
        "held_out": {"overall": validate.share_table(held),
                     "by_n": validate.share_table(held, "n"),
                     "splits": [asdict(o) for o in held]},
        "real_finetuning": "not run: the held-out optimum is that of the kernel trajectory",
        "seconds": time.time() - started,
    }
    write_json(out / "validate.json", result)
    atomic_write_bytes(out / "validate.md", validation_markdown(result).encode())
    return result


def validation_markdown(result: dict) -> str:
    """The share-captured tables of a validation result."""
    p = result["settings"]
    lines = [
        f"# Stopping rules against planted and held-out truths ({result['profile']} profile)",
        "",
        f"Share captured = {result['share']}. Default rule: `{result['default_rule']}`. "
        f"Real kernel: {result['model']} eNTK over {p['params']} on {result['pool']} examples "
        f"of {result['source']} (seed {p['seed']}). Median CIs: 95% percentile bootstrap over "
        "problems/splits. `rwy-oracle` = RWY with the planted sigma and R.", "",
        f"Made with: `{result['command']}`", "",
        f"## (a) Planted truths: {len(result['planted']['problems'])} problems "
        f"(n in {p['planted_sizes']}, sigma in (0.5, 2), R in (0.5, 2), {p['repeats']} "
        "repeats)", ""]
    lines += _markdown("All planted problems", result["planted"]["overall"], None)
    lines += _markdown("By kernel", result["planted"]["by_source"], "source")
    lines += _markdown("By noise and radius (sigma 2, R 0.5: the least to gain)",
                       result["planted"]["by_signal"], "signal")
    lines += ["### Estimates over planted values (median [10th, 90th pct])", "",
              "| source | estimate | median | 10th | 90th |", "|---|---|---|---|---|"]
    lines += [f"| {r['source']} | {r['estimate']} | {r['median']:.3f} | {r['p10']:.3f} | "
              f"{r['p90']:.3f} |" for r in result["planted"]["recovery"]]
    lines += ["", f"## (b) Real held-out truth: {p['splits']} random splits per n of the "
              f"{result['pool']}-example pool (rest held out)", ""]
    lines += _markdown("All splits", result["held_out"]["overall"], None)
    lines += _markdown("By n", result["held_out"]["by_n"], "n")
    lines += [f"Real fine-tuning: {result['real_finetuning']}.",
              f"Run time: {result['seconds']:.0f} s.", ""]
    return "\n".join(lines)
