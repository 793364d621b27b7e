"""The leakage guard: what an item about draft d, voted on date t, may be shown as evidence.

Rule (the spec's): nothing about d's own outcome, and nothing dated on or after t. We enforce it
three ways, any one of which excludes a passage: its date is not strictly before t; it is about
d (``d in passage.draft_ids``: d's draft-outcome, meeting and resolution-text passages); it names
any symbol of d (draft, resolution or meeting symbol) in its symbols or anywhere in its text.
Items not about a draft (the Association Test) have no cutoff: they ask about conduct in general.
The guard filters candidates *before* ranking and :func:`assert_no_leak` re-checks every result.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transferscope.bias.data.record import Record
from transferscope.bias.debias.corpus import Passage, _symbols
from transferscope.bias.probes.base import Item
from transferscope.core.errors import TransferScopeError


class LeakageError(TransferScopeError):
    """A passage the guard must have excluded reached an item (a bug, never a user error)."""


@dataclass(kw_only=True, frozen=True)
class ItemScope:
    """What an item is about: its draft, that draft's vote date, and the draft's symbols."""

    draft_id: str | None = None
    date: dt.date | None = None
    symbols: tuple[str, ...] = ()


def scope_of(item: Item, record: Record) -> ItemScope:
    """The item's draft, date and symbols: from the record, or, for an item from a file
    (whose draft the record may not hold), from the file's date and ``draft`` symbol."""
    if item.meta.get("source") == "items file":
        return ItemScope(draft_id=f"file:{item.meta['draft']}",
                         date=dt.date.fromisoformat(item.meta["date"]),
                         symbols=(str(item.meta["draft"]),))
    draft_id = item.meta.get("draft_id")
    if not draft_id:
        return ItemScope()
    row = record.draft(draft_id)
    return ItemScope(draft_id=str(draft_id), date=pd.Timestamp(row["date"]).date(),
                     symbols=_symbols(row))


def _mentions(text: str, symbol: str) -> bool:
    """``symbol`` in ``text`` as a whole symbol (S/123 does not match S/1234)."""
    return symbol in text and re.search(re.escape(symbol) + r"(?![\w.])", text) is not None


def leak_reason(passage: Passage, scope: ItemScope) -> str | None:
    """Why ``passage`` must not reach an item of ``scope`` (None: it may)."""
    if scope.draft_id is None:
        return None
    if scope.date is not None and passage.date >= scope.date:
        return f"dated {passage.date} (on or after the item's {scope.date})"
    if scope.draft_id in passage.draft_ids:
        return f"about the item's own draft {scope.draft_id}"
    for symbol in scope.symbols:
        if symbol in passage.symbols or _mentions(passage.text, symbol):
            return f"names the item's symbol {symbol}"
    return None


class LeakageGuard:
    """Fast masks over one corpus (dates as ordinals, draft -> passages) for many items."""

    def __init__(self, passages: Sequence[Passage]):
        self.passages = list(passages)
        self._ordinals = np.array([p.date.toordinal() for p in self.passages], dtype=np.int64)
        self._by_draft: dict[str, list[int]] = {}
        for i, p in enumerate(self.passages):
            for d in p.draft_ids:
                self._by_draft.setdefault(d, []).append(i)

    def allowed(self, scope: ItemScope) -> np.ndarray:
        """Boolean mask of the passages an item of ``scope`` may see."""
        mask = np.ones(len(self.passages), dtype=bool)
        if scope.draft_id is None:
            return mask
        if scope.date is not None:
            mask &= self._ordinals < scope.date.toordinal()
        mask[self._by_draft.get(scope.draft_id, [])] = False
        for i in np.flatnonzero(mask):
            p = self.passages[i]
            if any(s in p.symbols or _mentions(p.text, s) for s in scope.symbols):
                mask[i] = False
        return mask


def assert_no_leak(passages: Sequence[Passage], scope: ItemScope) -> None:
    """Re-check retrieved evidence; a leak is a bug, so it stops the run loudly."""
    for p in passages:
        reason = leak_reason(p, scope)
        if reason is not None:
            raise LeakageError(f"leakage guard: passage {p.passage_id} {reason} was retrieved "
                               f"for draft {scope.draft_id}")
