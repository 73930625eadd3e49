"""Phone numbers: parsed with phonenumbers, stored as typed and as E.164."""

from __future__ import annotations

import phonenumbers

from crmcore.services.text import digits


class InvalidPhone(ValueError):
    pass


def to_e164(raw: str, default_region: str | None) -> str:
    """Return ``raw`` in E.164, using ``default_region`` for numbers written without a country code."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("a phone number is required")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number ({_reason(exc)})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhone(f"{raw!r} is not a possible phone number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def national_digits(e164: str) -> str:
    """The national significant number of an E.164 number ("+33612345678" -> "612345678").

    Country calling codes are a prefix code, so the first one to match is the only one; no parsing.
    """
    number = digits(e164)
    for length in (1, 2, 3):
        if int(number[:length] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return number[length:]
    return number


def trunk_prefixes(region: str | None) -> tuple[str, ...]:
    """What people dial before a national number in ``region`` ("0" in France, "8" in Russia), and "0"."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region((region or "").upper(), None)
    prefix = metadata.national_prefix if metadata is not None else None
    return tuple(dict.fromkeys(p for p in (prefix, "0") if p))


def _reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code; write it as +<country code>...",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "it does not look like a number",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, str(exc))
