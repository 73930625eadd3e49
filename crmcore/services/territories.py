"""ISO country and language codes, from Babel's CLDR data."""

from __future__ import annotations

from functools import cache

from babel import Locale

#: Two-letter CLDR territories that are groupings or test codes, not places (ZZ is "Unknown Region").
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


@cache
def countries() -> dict[str, str]:
    """ISO 3166 alpha-2 code -> English name."""
    return {
        code: name
        for code, name in Locale("en").territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    }


@cache
def languages() -> dict[str, str]:
    return {code: name for code, name in Locale("en").languages.items() if len(code) == 2}


def is_country(code: str) -> bool:
    return code in countries()


def is_language(code: str) -> bool:
    return code in languages()


def country_name(code: str | None, language: str = "en") -> str:
    if not code:
        return ""
    try:
        return Locale.parse(language).territories.get(code, code)
    except (ValueError, TypeError):
        return countries().get(code, code)
