"""Read the CR-UNSC English resolution texts (``S_RES_NNNN_YYYY_EN_GOLD.txt``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^S_RES_(\d{4})_(\d{4})_EN(?:_GOLD)?\.txt$")
_DRAFT = re.compile(r"^\s*\[(S/[^\]\s]+)\]", re.MULTILINE)


@dataclass(kw_only=True, frozen=True)
class ResolutionText:
    number: int
    year: int
    draft_symbol: str | None  # the "[S/1511]" line some texts carry under their heading
    text: str

    @property
    def resolution(self) -> str:
        return f"S/RES/{self.number} ({self.year})"


def parse_resolution_texts(folder: Path) -> tuple[list[ResolutionText], list[str]]:
    """Every text file of ``folder`` with its number, year and (when written) draft symbol."""
    texts, problems = [], []
    for path in sorted(folder.glob("S_RES_*.txt")):
        m = _NAME.match(path.name)
        if not m:
            problems.append(f"{path}: name not S_RES_NNNN_YYYY_EN_GOLD.txt; skipped")
            continue
        body = path.read_text(encoding="utf-8", errors="replace").strip()
        if not body:
            problems.append(f"{path}: empty text; skipped")
            continue
        draft = _DRAFT.search(body[:800])
        texts.append(ResolutionText(number=int(m.group(1)), year=int(m.group(2)),
                                    draft_symbol=draft.group(1) if draft else None, text=body))
    return texts, problems
