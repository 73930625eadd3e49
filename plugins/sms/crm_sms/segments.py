"""How many SMS segments a text takes: GSM-7 when every character is in the GSM 03.38 alphabet
(the ``gsm0338`` codec decides; an extension character such as ``€`` or ``{`` costs two septets),
otherwise UCS-2. ``static/segments.js`` applies the same rules in the compose box.

Single message: 160 septets (GSM-7) or 70 UTF-16 units (UCS-2). Longer messages are split into
segments of 153 septets or 67 units (the rest carries the concatenation header); an escape
sequence or a surrogate pair is never split across two segments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class Segments:
    encoding: str  # GSM-7 | UCS-2
    characters: int
    #: Septets (GSM-7) or UTF-16 code units (UCS-2) the text uses.
    units: int
    segments: int
    #: Units one segment holds for this text (160/153 or 70/67).
    per_segment: int
    #: Units left in the last segment before another one is needed.
    remaining: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _costs(text: str) -> tuple[str, list[int]]:
    """The encoding and the cost of each character in units."""
    try:
        return "GSM-7", [len(ch.encode("gsm03.38")) for ch in text]
    except UnicodeEncodeError:
        return "UCS-2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def count_segments(text: str) -> Segments:
    encoding, costs = _costs(text or "")
    single, multi = LIMITS[encoding]
    units = sum(costs)
    if units == 0:
        return Segments(encoding, 0, 0, 0, single, single)
    if units <= single:
        return Segments(encoding, len(text), units, 1, single, single - units)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi:  # never split an escape sequence or a surrogate pair
            segments += 1
            used = 0
        used += cost
    return Segments(encoding, len(text), units, segments, multi, multi - used)
