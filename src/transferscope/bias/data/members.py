"""The five permanent members: canonical names, the spellings sources use, and who held the seat.

Names are canonical across the package (``China``, ``France``, ``Russia``, ``United Kingdom``,
``United States``). The seat held by Russia was the USSR's until 24 December 1991, and China's
seat was held by the Republic of China until 25 October 1971; votes from those years are kept
under the canonical seat and flagged, so a score about "Russia" can include or exclude the USSR.
"""

from __future__ import annotations

import datetime as dt

P5: tuple[str, ...] = ("China", "France", "Russia", "United Kingdom", "United States")

USSR_SEAT_END = dt.date(1991, 12, 24)
ROC_SEAT_END = dt.date(1971, 10, 25)

_ALIASES = {
    "china": "China", "people's republic of china": "China", "chn": "China",
    "republic of china": "China",
    "france": "France", "fra": "France",
    "russia": "Russia", "russian federation": "Russia", "the russian federation": "Russia",
    "rus": "Russia", "ussr": "Russia", "union of soviet socialist republics": "Russia",
    "soviet union": "Russia", "sun": "Russia",
    "uk": "United Kingdom", "united kingdom": "United Kingdom", "gbr": "United Kingdom",
    "united kingdom of great britain and northern ireland": "United Kingdom",
    "usa": "United States", "us": "United States", "united states": "United States",
    "united states of america": "United States",
}


def canonical_member(name: str) -> str | None:
    """The canonical P5 name for a spelling a source uses, or None for a non-P5 name."""
    key = " ".join(str(name).replace("\u00a0", " ").split()).strip().strip(".").lower()
    return _ALIASES.get(key)


def seat_holder(member: str, date: dt.date) -> str:
    """Who actually sat in ``member``'s seat on ``date`` (USSR, Republic of China, or itself)."""
    if member == "Russia" and date < USSR_SEAT_END:
        return "USSR"
    if member == "China" and date < ROC_SEAT_END:
        return "Republic of China"
    return member


def council_size(date: dt.date) -> int:
    """Members of the Council on ``date``: 11 until the 1965 enlargement took effect, then 15."""
    return 11 if date.year < 1966 else 15
