"""Rows and cells of the UN library's hand-written HTML tables, with their source line numbers.

The pages are old, hand-edited HTML (unclosed ``<tr>``, stray ``</a>``), so a strict parser
would reject them; splitting on the opening tags is robust and keeps line numbers, which the
builder needs to say exactly which line it could not parse.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_ROW = re.compile(r"<tr\b[^>]*>", re.IGNORECASE)
_CELL = re.compile(r"<t([dh])\b[^>]*>", re.IGNORECASE)
_BREAK = re.compile(r"<\s*/?\s*br\s*/?\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


@dataclass(kw_only=True, frozen=True)
class HtmlRow:
    line: int  # 1-based line of the row's opening tag in the file
    cells: tuple[str, ...]  # raw HTML of each <td> cell
    is_header: bool


def cell_text(raw: str, keep_breaks: bool = False) -> str:
    """Visible text of a cell: tags dropped, entities decoded, whitespace collapsed."""
    text = _BREAK.sub("\n" if keep_breaks else " ", raw)
    text = html.unescape(_TAG.sub(" ", text)).replace("\u00a0", " ")
    if keep_breaks:
        return "\n".join(" ".join(part.split()) for part in text.split("\n") if part.strip())
    return " ".join(text.split())


def table_rows(page: str) -> list[HtmlRow]:
    """Every ``<tr>`` of the page, in order, with its cells."""
    starts = [m.start() for m in _ROW.finditer(page)]
    rows = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(page)
        chunk = page[start:end]
        chunk = re.split(r"</table>", chunk, flags=re.IGNORECASE)[0]
        marks = list(_CELL.finditer(chunk))
        cells = []
        for j, m in enumerate(marks):
            stop = marks[j + 1].start() if j + 1 < len(marks) else len(chunk)
            cells.append(re.split(r"</t[dh]>", chunk[m.end():stop], flags=re.IGNORECASE)[0])
        is_header = bool(marks) and all(m.group(1).lower() == "h" for m in marks)
        rows.append(HtmlRow(line=page.count("\n", 0, start) + 1, cells=tuple(cells),
                            is_header=is_header))
    return rows
