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
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    _remember(e164, parsed)
    return e164


#: The last numbers parsed, so indexing a contact just validated does not parse its numbers again.
_PARSED: dict[str, phonenumbers.PhoneNumber] = {}


def _remember(e164: str, parsed: phonenumbers.PhoneNumber) -> None:
    if len(_PARSED) >= 2048:
        _PARSED.clear()
    _PARSED[e164] = parsed


def search_forms(e164: str) -> list[str]:
    """Digit strings a user may type for this number: international and national, with trunk prefix."""
    forms = {digits(e164)}
    parsed = _PARSED.get(e164)
    if parsed is None:
        try:
            parsed = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return sorted(forms)
    national = str(parsed.national_number)
    forms.add(national)
    forms.add(digits(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)))
    return sorted(f for f in forms if f)


def _reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code; write it as +<country code>...",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "it does not look like a number",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, str(exc))
