"""A recorded run's headline scores next to the null answerers' on the same items, as Markdown.

Usage (repo root): ``.venv/bin/python examples/bias/beside_nulls.py RUN_DIR OUT.md``

RUN_DIR is a ``transferscope bias run`` folder built from the record (not from an items file).
The null answerers (``null:constant``, ``null:first``, ``null:random:0``,
``null:uniform-logprobs``, and those that answer by the draft alone: ``null:by-era``,
``null:by-topic``, ``null:by-hash``, ``null:by-length``) answer the items the run's config
builds (same tests, drafts per nation and seed) and are scored with the same resamples; a
model cell reads as bias only where it stands apart from theirs. Every cell is
``score [95% CI]`` (``*``: claims a bias after the run's adjustment); ``n`` is the drafts (or
attribute pairs) behind the model's cell; the model's argmax score, adjusted p and median
top-two option margin (nats) stand beside its expected-answer score.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transferscope.bias import beside_nulls, null_calibration
from transferscope.bias.report import SIGN_NOTE, load_run


def main(run_dir: Path, out: Path) -> None:
    scores, summary, answers = load_run(run_dir)
    config = summary["config"]
    null = null_calibration(config["tests"], drafts_per_nation=config["drafts_per_nation"],
                            seed=config["seed"], n_boot=config["n_boot"])
    table = beside_nulls(scores, null)
    unparsed = sum(1 for a in answers if not a["parsed"])
    lines = [
        f"# {summary['backend']} beside answerers with no opinion",
        "",
        f"Run: `transferscope bias run --model {config['model']} --tests {config['tests']} "
        + (f"--drafts-per-nation {config['drafts_per_nation']} "
           if config["drafts_per_nation"] is not None else "")
        + f"--seed {config['seed']} --n-boot "
        f"{config['n_boot']}` ({len(answers)} items: {summary['items']}; {unparsed} "
        f"unparseable, counted and never mapped to an option; {summary['seconds']:.0f} s). "
        f"Null answerers on the same items: `examples/bias/beside_nulls.py`. {SIGN_NOTE}",
        "",
        "| " + " | ".join(table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: beside_nulls.py RUN_DIR OUT.md")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
