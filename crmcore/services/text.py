"""Text normalisation shared by search, sorting and duplicate detection."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[^\w@.+-]+", re.UNICODE)
_NON_DIGIT = re.compile(r"\D+")
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]{3,}$")


def fold(text: str | None) -> str:
    """Lowercase without accents: "Élodie Müller" -> "elodie muller"."""
    if not text:
        return ""
    if text.isascii():  # nothing to decompose (most names, every email): the fast path
        return text.lower().strip()
    return _fold_unicode(text)


@lru_cache(maxsize=16384)
def _fold_unicode(text: str) -> str:
    # Names, cities and tags repeat: bulk imports fold the same words again and again.
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def words(text: str | None) -> list[str]:
    """Folded words of ``text``, punctuation at the ends removed."""
    return [w.strip(".-+_") for w in _WORD.split(fold(text)) if w.strip(".-+_")]


def digits(text: str | None) -> str:
    return _NON_DIGIT.sub("", text or "")


def looks_like_phone(text: str) -> bool:
    return bool(_PHONE_LIKE.match(text.strip())) and len(digits(text)) >= 3


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (binary collation)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
