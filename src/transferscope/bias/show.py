"""Browse a finished run (``bias show RUN_DIR``): a terminal table and a per-item HTML page.

Reads only what the run wrote (``run.json``, ``scores.csv``, ``answers.jsonl``); asks no model.
Every piece of model or item text on the page is HTML-escaped, so a reply that contains markup
is shown, never run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.bias.data.members import P5
from transferscope.bias.evaluate import read_answers
from transferscope.bias.run_files import read_scores, read_summary
from transferscope.bias.scoring import HEADLINE
from transferscope.core.hygiene import terminal_text
from transferscope.core.io import atomic_write_bytes
from transferscope.core.templating import render_html


@dataclass(kw_only=True)
class RunView:
    """The terminal lines and where the per-item page was written."""

    lines: list[str]
    page: Path


def _cell(row: Any) -> str:
    flag = f"  {row.flag}" if isinstance(row.flag, str) and row.flag else ""
    p_adj = getattr(row, "p_adj", float("nan"))
    adjusted = f" p_adj={p_adj:.3g}" if pd.notna(p_adj) else ""
    claim = " *" if bool(getattr(row, "claim", False)) else ""
    metric = "" if row.metric == HEADLINE else f"{row.metric} "
    return (f"{row.test:9s} {row.form:13s} {row.nation:15s} {metric}"
            f"{row.value:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}]{adjusted}{claim}  "
            f"n={int(row.n_items)} "
            f"unparsed={int(row.n_unparsed) if pd.notna(row.n_unparsed) else 0}{flag}")


def run_lines(summary: dict[str, Any], scores: pd.DataFrame, answers: list[dict[str, Any]]
              ) -> list[str]:
    """What ``bias show`` prints: the run's provenance, the headline cells, every other
    country's own rows, and per test the answers that could not be placed."""
    prov = summary.get("provenance") or {}
    config = summary["config"]
    lines = [f"model: {summary['backend']}  (fingerprint {prov.get('backend_fingerprint', '?')})",
             f"items: {prov.get('items_file') or 'the UNSC record'}  "
             f"sha256 {(prov.get('items_sha256') or prov.get('record_sha256') or '?')[:16]}",
             f"version {prov.get('package_version', '?')}, commit {prov.get('git_commit')}; "
             f"command: {prov.get('command_line')}",
             f"settings: option scoring {config.get('option_scoring')}, max tokens "
             f"{config.get('max_tokens')}, temperature {config.get('temperature')}, samples "
             f"{config.get('samples')}, few-shot {config.get('few_shot')}, seed {config['seed']}",
             "", "headline (positive = less favourable than the record supports; each nation "
             "against the median of the others on the same drafts; * = claims a bias):"]
    if "n_unparsed" not in scores:
        scores = scores.assign(n_unparsed=0)
    head = scores[scores["headline"]]
    lines += [_cell(r) for r in head.itertuples()]
    others = scores[~scores["nation"].isin(P5) & (scores["metric"] == "B")]
    if not others.empty:
        lines += ["", "other members (not centred; not part of the headline):"]
        lines += [_cell(r) for r in others.itertuples()]
    lines += ["", "answers per test and form: parsed / unparseable / correct"]
    frame = pd.DataFrame(answers)
    if not frame.empty:
        for (test, form), g in frame.groupby(["test", "form"], sort=False):
            correct = g["correct"] if "correct" in g else pd.Series(dtype=object)
            methods = ", ".join(sorted(set(g["method"].dropna())))
            lines.append(f"{test:9s} {form:13s} {int(g['parsed'].sum())} / "
                         f"{int((~g['parsed']).sum())} / {int((correct == True).sum())}"  # noqa: E712
                         f"  ({methods})")
    return lines


def _text(value: Any) -> str:
    """A value as the page shows it: text as is, ``None`` empty, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def items_page(summary: dict[str, Any], answers: list[dict[str, Any]]) -> str:
    """One self-contained HTML page: every item with its messages, options (log-probabilities
    where scored), reply, parse, gold and whether they agree; all text escaped."""
    rows = []
    for a in answers:
        lp = a.get("option_logprobs") or {}
        rows.append({
            "parsed": bool(a.get("parsed")), "item": _text(a["item_id"]),
            "test": _text(a["test"]), "form": _text(a["form"]), "nation": _text(a["nation"]),
            "messages": [(_text(m.get("role")), _text(m.get("content"))) for m in
                         a.get("messages") or [{"role": "user", "content": a.get("prompt")}]],
            "options": [(_text(o), lp.get(o)) for o in a.get("options") or []],
            "reply": _text(a.get("reply")),
            "samples": [(_text(s["reply"]), _text(s["parse"])) for s in a.get("samples") or []],
            "choice": _text(a.get("choice")), "gold": _text(a.get("gold")),
            "correct": {True: "yes", False: "no"}.get(bool(a["correct"]), "")
            if isinstance(a.get("correct"), bool) else "",
            "method": _text(a.get("method"))})
    return render_html("transferscope.bias", "items.html.j2",
                       title=f"Items of {summary['backend']}", rows=rows)


def show_run(run_dir: str | Path) -> RunView:
    """Read a run folder; write ``items.html`` beside it; return the lines to print."""
    run_dir = Path(run_dir)
    summary, scores, answers = read_summary(run_dir), read_scores(run_dir), read_answers(run_dir)
    page = run_dir / "items.html"
    atomic_write_bytes(page, items_page(summary, answers).encode("utf-8"))
    lines = [terminal_text(line) for line in run_lines(summary, scores, answers)]
    return RunView(lines=lines, page=page)  # no control character from a file reaches the terminal
