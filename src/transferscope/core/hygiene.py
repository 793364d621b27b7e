"""Output hygiene in one place: what every writer calls before text from a file, a model or a
server reaches a terminal, a Markdown or HTML page, a CSV cell or a stored URL.

- :func:`visible_controls` writes control characters (ANSI escapes, carriage returns, bell,
  C1 controls, bidirectional overrides) as visible ``\\x1b``-style escapes, so a server's error
  text cannot recolour, clear or rewrite a terminal, and a page shows what was sent;
  :func:`terminal_text` does it for a printed line (and removes URL credentials),
  :func:`terminal_line` also folds the text into one line (the CLI's error line).
- :func:`markdown_text` renders text inert in Markdown: ``<`` as ``&lt;`` (no HTML tag or
  autolink can open) and, with a backslash, the characters that would start a link, an image,
  a code span, a table border or a heading, so ``![x](http://tracker)`` from a model reply
  shows as written instead of loading an image (brackets of an interval stay as written).
- :func:`html_text` is :func:`html.escape` plus the control characters made visible.
- :func:`csv_cell` prefixes a text cell that a spreadsheet would run as a formula (first
  character ``= + - @``, tab or carriage return) with ``'`` as OWASP advises
  (https://owasp.org/www-community/attacks/CSV_Injection); numbers, including negative ones,
  stay numbers. :func:`csv_cell_back` undoes it exactly, for the project's own readers.
- :func:`redact_url` removes credentials (``user:pass@``, secret-looking query values) from a
  URL before it is stored or printed; :func:`redact_urls` does it for every URL in a text.
- :func:`fold_lookalikes` maps a name written with another script's look-alike letters to the
  Latin spelling it imitates, so a reader can refuse a Cyrillic-lettered name posing as
  ``China``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# C0 controls except tab and newline, DEL, C1 controls, and the bidirectional formatting
# characters that reorder what a terminal or a page shows (CVE-2021-42574, "Trojan Source").
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                       "\u2066-\u2069]")
_CONTROLS_AND_SPACE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                                 "\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible_controls(text: Any, keep_newlines: bool = True) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``, ``\\r``
    as ``\\x0d``, ``\\u202e``); tabs and, with ``keep_newlines``, newlines are kept."""
    pattern = _CONTROLS if keep_newlines else _CONTROLS_AND_SPACE
    return pattern.sub(_escape, str(text))


def terminal_text(text: Any) -> str:
    """A line for a terminal as written (its spacing kept): controls, newlines included,
    made visible and credentials removed from URLs."""
    return redact_urls(visible_controls(text, keep_newlines=False))


def terminal_line(text: Any) -> str:
    """One line for a terminal (an error line): whitespace runs folded to one space, controls
    made visible, credentials removed from URLs."""
    return terminal_text(" ".join(str(text).split()))


# What makes Markdown act, not show: the backslash (it would undo our escapes), code spans,
# table cell borders, and a bracket that opens a link or an image: "](" and "][" end a link's
# text, "![" starts an image ("[0.1, 0.2]", an interval, stays as written).
_MD_INLINE = re.compile(r"([\\`|])|(?<=\])([(\[])|(?<=!)(\[)")
# What changes a line's meaning where it starts: a quote, a reference definition ("[x]: url"),
# a heading ("# "), a list item ("- ", "1. "), a rule, a setext underline or a fence ("---",
# "===", "~~~"). Numbers ("-0.5", "0.12") stay as written.
_MD_LINE_START = re.compile(r"^(\s*)([>\[]|#{1,6}(?=\s|$)|[-+*](?=\s|$)|[=\-_*~]{2,})",
                            re.MULTILINE)
_MD_ORDERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)", re.MULTILINE)


def markdown_text(text: Any, block: bool = True) -> str:
    """``text`` as inert Markdown: shown as written, never a link, image, tag, code span or
    table cell border and (``block``: text that starts lines) never a heading, quote or list
    (see the module docstring). Table cells pass ``block=False``."""
    out = visible_controls(text).replace("<", "&lt;")
    out = _MD_INLINE.sub(lambda m: "\\" + m.group(0), out)
    if not block:
        return out
    out = _MD_LINE_START.sub(r"\1\\\2", out)
    return _MD_ORDERED.sub(r"\1\\\2", out)


def html_text(text: Any, quote: bool = True) -> str:
    """``text`` escaped for HTML (``& < > " '``) with control characters made visible."""
    import html

    return html.escape(visible_controls(text), quote=quote)


_FORMULA_START = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string that would start a formula gets a
    leading ``'`` (so does one already starting with ``'`` before such a character, which
    keeps :func:`csv_cell_back` exact); numbers and plain numeric strings are unchanged."""
    if not isinstance(value, str) or not value:
        return value
    head = value.lstrip("'")
    if head and head[0] in _FORMULA_START and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_cell_back(value: Any) -> Any:
    """The cell :func:`csv_cell` was given (one leading ``'`` dropped where it added one)."""
    if not isinstance(value, str) or not value.startswith("'"):
        return value
    head = value.lstrip("'")
    if head and head[0] in _FORMULA_START and not _NUMBER.fullmatch(value[1:]):
        return value[1:]
    return value


def _map_text(frame: Any, cell: Callable[[Any], Any]) -> Any:
    """A copy of a pandas DataFrame with ``cell`` applied to its text cells and column names."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype) in ("string", "str"):
            out[column] = out[column].map(cell)
    out.columns = [cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def csv_frame(frame: Any) -> Any:
    """A copy of a pandas DataFrame whose text cells (and column names) pass :func:`csv_cell`."""
    return _map_text(frame, csv_cell)


def csv_frame_back(frame: Any) -> Any:
    """The frame :func:`csv_frame` was given, from one read back as text."""
    return _map_text(frame, csv_cell_back)


_SECRET_KEYS = re.compile(r"(?i)^(?:.*[-_])?(?:api[-_]?key|key|token|secret|password|passwd|"
                          r"pwd|auth|authorization|sig|signature|credential|credentials|"
                          r"access[-_]?token|session)$")
_USERINFO = re.compile(r"(//)[^/?#@\s]*@")


def redact_url(url: Any) -> str:
    """``url`` without credentials: no ``user:password@`` and secret-looking query values
    (``key``, ``token``, ``api_key``, ...) as ``***``. A URL that does not parse loses its
    user info by pattern instead (it is never returned with it)."""
    text = str(url)
    if "@" not in text and "=" not in text:
        return text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:  # e.g. a malformed IPv6 host
        return _USERINFO.sub(r"\1", text)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_KEYS.match(k) for k, _ in pairs):
            query = urlencode([(k, "***" if _SECRET_KEYS.match(k) else v) for k, v in pairs],
                              safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_urls(text: Any) -> str:
    """``text`` with :func:`redact_url` applied to every ``scheme://...`` in it."""
    plain = str(text)
    if "://" not in plain:
        return plain
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), plain)


# Letters of other scripts drawn like Latin ones (Unicode's confusables.txt, the subset that
# spells country names); the rest is folded by NFKD.
_LOOKALIKE = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "τ": "t", "ι": "i", "κ": "k", "υ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})


def fold_lookalikes(text: str) -> str:
    """``text`` with look-alike letters of other scripts mapped to the Latin ones they imitate,
    compatibility forms and accents folded, invisible marks dropped, spaces collapsed: two
    names that read the same fold to the same string (China spelled with a Cyrillic Es folds
    to ``"China"``)."""
    folded = unicodedata.normalize("NFKD", text.translate(_LOOKALIKE))
    kept = "".join(c for c in folded if not unicodedata.category(c).startswith(("M", "C")))
    return " ".join(kept.split())
