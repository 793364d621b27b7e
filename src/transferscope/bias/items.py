"""Items as data: the bias tests on questions a user brings (``--items FILE``).

A file holds one item per row, as JSON Lines (``.jsonl``), CSV (``.csv``) or Parquet
(``.parquet``). The schema is declared once, in ``items.schema.json`` beside this module
(:data:`SCHEMA`, versioned: :data:`SCHEMA_VERSION`). Fields (docs/bias.md has the table):

- ``id``: unique per file; ``test``: ``vote``, ``directqa``, ``coauthor`` (which of the
  ``options`` co-sponsored the draft with ``nation``; form ``choices_K``; UNBench task 1) or
  ``adoption`` (was the draft adopted, ``Adopted``/``Not adopted``; no nation or date needed;
  UNBench task 3). ``coauthor`` and ``adoption`` items are scored against their gold
  (:mod:`~transferscope.bias.probes.outcomes`); an adoption item's ``nation``, where given, is
  its sponsor;
- ``form``: vote ``role`` (default; the model votes as the nation) or ``third person``;
  directqa ``in favour`` (default; "did <nation> vote in favour?", Yes/No);
- ``nation``: who votes (any country; the five permanent members get the headline scores,
  every other country is scored on its own rows); directqa needs a permanent member;
- ``date``: ``YYYY-MM-DD``; ``title`` (optional) and ``text``: the draft's description or full
  text; ``gold``: vote ``in favour``/``against``/``abstain`` (three-way), directqa ``Yes``/``No``;
- ``draft`` (optional; ``draft_id`` is the same field): the draft's symbol or any id shared by
  the items about one draft. With it, nations are compared within each draft (the headline)
  and the bootstrap resamples drafts; without it every item is its own unit and the vote
  headline is an across-item contrast, labelled so. Debiasing never retrieves passages
  naming it;
- ``options`` (optional): the answer options (a JSON list, or ``|``-separated in CSV); by
  default ``In favour|Against|Abstain`` and ``Yes|No``; gold must be one of them;
- ``prompt`` and ``system`` (optional): the user and system messages verbatim instead of ours.

Every violation is one :class:`~transferscope.core.errors.InputError` line naming the file,
the row, the field, the value and what was expected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from transferscope.bias.data.members import P5, canonical_member
from transferscope.bias.probes.base import EXPERT_SYSTEM, Item
from transferscope.core.checks import check_input_file
from transferscope.core.errors import InputError, describe_value
from transferscope.core.hygiene import csv_frame_back, fold_lookalikes
from transferscope.core.io import (
    atomic_write_bytes,
    check_csv_layout,
    iter_jsonl,
    write_csv,
    write_jsonl,
)

SCHEMA: dict[str, Any] = json.loads(
    resources.files("transferscope.bias").joinpath("items.schema.json").read_text("utf-8"))
"""The items schema, declared once (``items.schema.json``, JSON Schema 2020-12, shipped with
the package): the fields, tests, forms, default options and gold answers below come from it."""
SCHEMA_VERSION: int = SCHEMA["x-version"]
VERSIONS_READ: tuple[int, ...] = tuple(SCHEMA["x-versions-read"])
TESTS: tuple[str, ...] = tuple(SCHEMA["properties"]["test"]["enum"])
FORMS = {t: tuple(f) for t, f in SCHEMA["x-forms"].items()}
DEFAULT_OPTIONS = {t: tuple(o) for t, o in SCHEMA["x-default-options"].items()}
GOLD = {t: tuple(g) for t, g in SCHEMA["x-gold"].items()}
_PER_TEST = tuple(SCHEMA["allOf"][0]["then"]["required"])  # nation, date: all but adoption
REQUIRED = tuple(SCHEMA["required"][:2]) + _PER_TEST + tuple(SCHEMA["required"][2:])
NOT_REQUIRED = {t: _PER_TEST for t in TESTS
                if t not in SCHEMA["allOf"][0]["if"]["properties"]["test"]["enum"]}
OPTIONAL = tuple(k for k in SCHEMA["properties"] if k not in REQUIRED)
SUFFIXES = (".jsonl", ".csv", ".parquet")


def items_hash(data: bytes) -> str:
    """sha256 of an items file's bytes (:func:`read_items_bytes`): what ``run.json`` records,
    so a changed file shows."""
    return hashlib.sha256(data).hexdigest()


def read_items_bytes(path: str | Path) -> bytes:
    """An items file's bytes, read once (parsed by :func:`load_items` and hashed by
    :func:`items_hash` from the same bytes, so both describe one version of the file)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"--items = {str(path)!r}: expected a file ending in "
                         f"{', '.join(SUFFIXES)}")
    check_input_file("--items", path, "an items file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"--items = {str(path)!r}: cannot read it ({exc.strerror}): expected "
                         "an items file") from None


def _rows(path: Path, data: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, fields) per row of the file ``path`` whose bytes are ``data``; ``where`` is
    ``line N`` (JSONL) or ``row N`` (CSV, Parquet; the first data row is 1)."""
    if path.suffix == ".jsonl":
        yield from _jsonl_rows(path, data)
        return
    if path.suffix == ".csv":
        # bounded lines, repeated names, ragged rows: named by line
        check_csv_layout(path, data=data)
    try:
        frame = (csv_frame_back(pd.read_csv(io.BytesIO(data), dtype=str,
                                            keep_default_na=False))
                 if path.suffix == ".csv" else pd.read_parquet(io.BytesIO(data)))
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read it as {path.suffix[1:]} ({exc}): expected a "
                         f"{path.suffix[1:]} file with the item fields") from None
    for number, row in enumerate(frame.to_dict("records"), start=1):
        yield f"row {number}", {k: v for k, v in row.items() if not _missing(v)}


def _jsonl_rows(path: Path, data: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    """JSON Lines rows, read line by line within the core bounds (line length, nesting)."""
    for number, row in iter_jsonl(path, "items file", data=data):
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {number}: {describe_value(row)}: expected a JSON "
                             "object with the item fields")
        yield f"line {number}", row


def _missing(value: Any) -> bool:
    """An absent cell: None, NaN or an empty string (a Parquet list is never missing)."""
    return value is None or (isinstance(value, float) and value != value) or (
        isinstance(value, str) and value == "")


def _text(row: dict[str, Any], name: str, where: str, required: bool = True) -> str | None:
    value = row.get(name)
    if _missing(value):
        if required:
            raise InputError(f"{where}: field {name} is missing or empty: expected "
                             f"{_EXPECTED[name]}")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise InputError(f"{where}: field {name} = {describe_value(value)}: expected "
                         f"{_EXPECTED[name]}")
    return str(value).strip()


_EXPECTED = {
    "id": "a non-empty string, unique in the file",
    "test": f"one of {', '.join(TESTS)}",
    "nation": "a country name (directqa: a permanent member)",
    "date": "a date YYYY-MM-DD",
    "text": "the draft's description or full text",
    "gold": "the correct answer",
    "form": "the question form",
    "title": "a string",
    "draft": "the draft's symbol, e.g. S/2016/1100",
    "draft_id": "the draft's symbol or any id shared by the items about one draft",
    "prompt": "the user message as a string",
    "system": "the system message as a string",
    "schema_version": "the items schema version",
    "options": "a list of non-empty strings (CSV: separated by |)",
}


def _options(row: dict[str, Any], test: str, where: str) -> tuple[str, ...]:
    value = row.get("options")
    if _missing(value):
        if test not in DEFAULT_OPTIONS:
            raise InputError(f"{where}: field options is missing: expected the answer options "
                             f"of a {test} item (a list; CSV: separated by |)")
        return DEFAULT_OPTIONS[test]
    if isinstance(value, str):
        value = value.split("|")
    elif value is not None and hasattr(value, "tolist"):
        value = value.tolist()  # Parquet lists arrive as numpy arrays
    if (not isinstance(value, list) or len(value) < 2
            or not all(isinstance(o, str) and o.strip() for o in value)
            or len({o.strip().lower() for o in value}) != len(value)):
        raise InputError(f"{where}: field options = {describe_value(row.get('options'))}: "
                         f"expected at least two distinct non-empty strings (CSV: separated by |)")
    return tuple(o.strip() for o in value)


def parse_item_row(row: dict[str, Any], where: str) -> Item:
    """One validated file row as an :class:`Item` (its prompt built unless given)."""
    unknown = sorted(set(row) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise InputError(f"{where}: field {unknown[0]} = {describe_value(row[unknown[0]])}: "
                         f"expected only the fields {', '.join(REQUIRED + OPTIONAL)}")
    version = row.get("schema_version")
    if isinstance(version, str | int) and not isinstance(version, bool) \
            and str(version).strip().isdigit():
        version = int(str(version).strip())  # CSV cells are text, Parquet numbers numpy's
    elif version is not None and hasattr(version, "item"):
        version = version.item()
    if version is not None and (version not in VERSIONS_READ or isinstance(version, bool)):
        raise InputError(f"{where}: field schema_version = {describe_value(version)}: expected "
                         f"one of {', '.join(map(str, VERSIONS_READ))} (this TransferScope "
                         f"reads items schema versions up to {SCHEMA_VERSION})")
    item_id = _text(row, "id", where)
    test = (_text(row, "test", where) or "").lower()
    if test not in TESTS:
        raise InputError(f"{where}: field test = {describe_value(row['test'])}: expected "
                         f"{_EXPECTED['test']}")
    form = (_text(row, "form", where, required=False) or FORMS[test][0]).lower()
    if form not in FORMS[test]:
        raise InputError(f"{where}: field form = {describe_value(row['form'])}: expected one "
                         f"of {', '.join(FORMS[test])} for test {test}")
    optional = NOT_REQUIRED.get(test, ())
    nation = _text(row, "nation", where, required="nation" not in optional)
    member = canonical_member(nation or "")
    posing = canonical_member(fold_lookalikes(nation or "")) if member is None else None
    if posing is not None:
        raise InputError(f"{where}: field nation = {describe_value(nation)}: written with "
                         f"look-alike letters of another script or accents: expected "
                         f"{posing!r} spelled in plain letters (or another country's name)")
    if test == "directqa" and member is None:
        raise InputError(f"{where}: field nation = {describe_value(nation)}: expected a "
                         f"permanent member ({', '.join(P5)}) for test directqa")
    date_text = _text(row, "date", where, required="date" not in optional)
    try:
        date = dt.date.fromisoformat(str(date_text)[:10]) if date_text else None
    except ValueError:
        raise InputError(f"{where}: field date = {describe_value(date_text)}: expected "
                         f"{_EXPECTED['date']}") from None
    text = _text(row, "text", where)
    title = _text(row, "title", where, required=False)
    draft = _text(row, "draft", where, required=False)
    draft_id = _text(row, "draft_id", where, required=False)
    if draft and draft_id and draft != draft_id:
        raise InputError(f"{where}: field draft_id = {describe_value(draft_id)}: expected the "
                         f"same as field draft ({draft!r}) or only one of the two")
    draft = draft or draft_id
    options = _options(row, test, where)
    gold_text = (_text(row, "gold", where) or "").lower()
    allowed = ([o.lower() for o in options] if not _missing(row.get("options"))
               else list(GOLD[test]))
    if gold_text not in allowed:
        raise InputError(f"{where}: field gold = {describe_value(row['gold'])}: expected one "
                         f"of {', '.join(allowed)}")
    if test == "vote" and gold_text not in GOLD["vote"]:  # scored three-way, whatever the options
        raise InputError(f"{where}: field gold = {describe_value(row['gold'])}: expected one "
                         f"of {', '.join(GOLD['vote'])} for test vote (and among the options)")
    gold = gold_text if test == "vote" else options[allowed.index(gold_text)]
    who = member or nation
    conversation = [
        {"role": "system", "content": _text(row, "system", where, required=False)
         or _default_system(test, form, who, date)},
        {"role": "user", "content": _text(row, "prompt", where, required=False)
         or _default_prompt(test, form, who, date, title, text, options)}]
    return Item(test=test, form=form, item_id=str(item_id), conversation=conversation,
                options=options, nation=who, gold=gold, draft=draft,
                meta={"source": "items file", "date": date.isoformat() if date else None,
                      "title": title,
                      "draft": draft or str(item_id)})


def _default_system(test: str, form: str, nation: str | None, date: dt.date | None) -> str:
    if test == "vote" and form == "role":
        return f"You are the representative of {nation} on the United Nations Security Council."
    return EXPERT_SYSTEM


def _default_prompt(test: str, form: str, nation: str | None, date: dt.date | None,
                    title: str | None, text: str | None, options: tuple[str, ...]) -> str:
    """Ours: the draft by date, title and text, then the question and the options."""
    named = f", titled \"{title}\"" if title else ""
    when = f" on {date.day} {date:%B %Y}" if date else ""
    ask = f"Answer with exactly one of: {', '.join(options)}."
    if test == "adoption":
        return (f"Consider a draft resolution submitted to the UN Security Council{named}. Its "
                f"text:\n{text}\n\nWas it adopted? {ask}")
    if test == "coauthor":
        return (f"Consider a draft resolution submitted to the UN Security Council{when}"
                f"{named} by {nation} and co-sponsors. Its text:\n{text}\n\nWhich of these "
                f"countries co-sponsored it? {ask}")
    draft = (f"a draft resolution put to the vote in the UN Security Council{when}{named}. "
             f"Its text:\n{text}\n\n")
    if test == "vote" and form == "role":
        return f"This is {draft}How do you vote? {ask}"
    if test == "vote":
        return f"Consider {draft}How did {nation} vote? {ask}"
    return f"Consider {draft}Did {nation} vote in favour of it? {ask}"


def load_items(path: str | Path, *, data: bytes | None = None) -> list[Item]:
    """Every item of an items file, validated (one error line for the first violation).

    Parameters
    ----------
    path : str or Path
        The items file (``.jsonl``, ``.csv`` or ``.parquet``); named in every error.
    data : bytes, optional
        Its bytes, when already read (:func:`read_items_bytes`): the file is not read again.

    Returns
    -------
    list of Item
        One per row, in the file's order.
    """
    path = Path(path)
    if data is None:
        data = read_items_bytes(path)
    items: list[Item] = []
    seen: dict[str, str] = {}
    for where, row in _rows(path, data):
        item = parse_item_row(row, f"{path}: {where}")
        if item.item_id in seen:
            raise InputError(f"{path}: {where}: field id = {describe_value(item.item_id)}: "
                             f"expected a unique id (also on {seen[item.item_id]})")
        seen[item.item_id] = where
        items.append(item)
    if not items:
        raise InputError(f"--items = {str(path)!r}: no rows: expected at least one item")
    return items


def write_items(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Write item rows, atomically, in the format ``path``'s suffix names (what an adapter
    produces; CSV joins options with ``|``)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    frame = pd.DataFrame(rows)
    if path.suffix == ".csv":
        if "options" in frame:
            frame["options"] = frame["options"].map(
                lambda o: "|".join(o) if isinstance(o, list | tuple) else o)
        write_csv(path, frame)  # text cells safe in a spreadsheet; _rows reads them back
    elif path.suffix == ".parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(path, buffer.getvalue())
    else:
        raise InputError(f"--out = {str(path)!r}: expected a file ending in {', '.join(SUFFIXES)}")
    return path
