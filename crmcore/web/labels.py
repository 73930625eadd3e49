"""Words shown on the pages, in the user's language: field names, statuses, kinds, sources, lookup labels.

Templates reach these through the ``ui`` Jinja global (:class:`UiHelpers`), so plugin-contributed
templates rendered inside a page (tabs) can use them too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from babel import Locale
from babel import dates as babel_dates
from flask import g
from flask_babel import get_locale, get_timezone
from flask_babel import lazy_gettext as _l

from crmcore.contributions import localize
from crmcore.services.territories import countries, languages

FIELD_LABELS: dict[str, Any] = {
    "kind": _l("Kind"),
    "salutation": _l("Salutation"),
    "first_name": _l("First name"),
    "last_name": _l("Last name"),
    "name": _l("Organization name"),
    "display_name": _l("Name"),
    "number": _l("Number"),
    "job_title": _l("Job title"),
    "department": _l("Department"),
    "birthday": _l("Birthday"),
    "origin": _l("Origin"),
    "description": _l("Description"),
    "website": _l("Website"),
    "social": _l("Social networks"),
    "language": _l("Language"),
    "country": _l("Country"),
    "external_id": _l("Internal reference"),
    "status": _l("Status"),
    "is_supplier": _l("Supplier"),
    "emails": _l("Emails"),
    "phones": _l("Phones"),
    "addresses": _l("Addresses"),
    "organization_id": _l("Organization"),
    "role": _l("Role"),
    "reports_to_id": _l("Reports to"),
    "tags": _l("Tags"),
    "custom": _l("Custom fields"),
    "owners": _l("Responsibles"),
    "team_id": _l("Team"),
    "visibility": _l("Access"),
    "do_not_email": _l("Do not email"),
    "notify_owners": _l("Notify responsibles of changes"),
    "photo": _l("Photo"),
    "warnings": _l("Warnings"),
    "version": _l("Version"),
    "created_at": _l("Created"),
    "updated_at": _l("Updated"),
    "address": _l("Email address"),
    "label": _l("Label"),
    "primary": _l("Primary"),
    "accepts_email": _l("Accepts emails"),
    "type": _l("Type"),
    "sms": _l("SMS"),
    "whatsapp": _l("WhatsApp"),
    "viber": _l("Viber"),
    "calls": _l("Calls"),
    "street": _l("Street"),
    "street2": _l("Street (line 2)"),
    "postal_code": _l("Postal code"),
    "city": _l("City"),
    "region": _l("Region"),
    "body": _l("Note"),
    "message": _l("Message"),
    "level": _l("Level"),
    "_record": _l("Contact"),
}
KIND_LABELS = {"person": _l("Person"), "organization": _l("Organization")}
STATUS_LABELS = {"prospect": _l("Prospect"), "customer": _l("Customer"), "user": _l("User")}
VISIBILITY_LABELS = {
    "private": _l("Private: only its responsibles"),
    "public_read": _l("Public: everyone can read"),
    "public_write": _l("Public: everyone can read and edit"),
}
VISIBILITY_SHORT = {
    "private": _l("Private"),
    "public_read": _l("Public (read)"),
    "public_write": _l("Public (read and write)"),
}
EMAIL_LABELS = {"work": _l("Work"), "home": _l("Home"), "other": _l("Other")}
ADDRESS_KINDS = {
    "main": _l("Main address"),
    "billing": _l("Billing address"),
    "shipping": _l("Shipping address"),
    "other": _l("Other address"),
    "personal": _l("Personal address"),
}
CONSENT_LABELS = {
    "sms": _l("SMS"),
    "whatsapp": _l("WhatsApp"),
    "viber": _l("Viber"),
    "calls": _l("Calls"),
    "accepts_email": _l("Accepts emails"),
}
SOURCE_LABELS = {
    "ui": _l("web interface"),
    "api": _l("API"),
    "import": _l("import"),
    "web_form": _l("web form"),
    "inbound": _l("inbound message"),
    "cli": _l("command line"),
    "system": _l("system"),
    "merge": _l("merge"),
}
HISTORY_ACTIONS = {
    "create": _l("Created"),
    "update": _l("Changed"),
    "delete": _l("Deleted"),
    "restore": _l("Restored"),
    "merge": _l("Merged"),
    "unmerge": _l("Merge undone"),
    "consent": _l("Consent"),
    "note": _l("Note"),
    "warning": _l("Warning"),
    "status": _l("Status"),
}
NOTE_KINDS = {"internal": _l("Internal note"), "customer": _l("Customer note")}
WARNING_LEVELS = {"info": _l("Information"), "blocking": _l("Blocking")}
LOOKUP_LISTS = {
    "salutation": _l("Salutations"),
    "origin": _l("Origins"),
    "role": _l("Roles"),
    "phone_type": _l("Phone types"),
}
FIELD_TYPES = {
    "text": _l("Text"),
    "long_text": _l("Long text"),
    "integer": _l("Whole number"),
    "decimal": _l("Decimal number"),
    "date": _l("Date"),
    "boolean": _l("Yes / no"),
    "choice": _l("Choice"),
    "multi_choice": _l("Several choices"),
    "url": _l("Web address"),
    "email": _l("Email"),
    "phone": _l("Phone"),
}
#: Beginnings of the reasons the duplicate check gives (in English), as shown in the form's warning.
DUPLICATE_REASONS = {
    "same name": _l("same name"),
    "name similarity": _l("similar name"),
    "first and last names swapped": _l("first and last names swapped"),
    "last name initial": _l("last name initial"),
    "first name initial": _l("first name initial"),
    "same birthday": _l("same birthday"),
    "close birthdays": _l("close birthdays"),
    "different birthdays": _l("different birthdays"),
    "same postcode": _l("same postal code"),
    "address similarity": _l("similar address"),
    "same city": _l("same city"),
    "same email": _l("same email"),
    "same phone": _l("same phone"),
    "same organization": _l("same organization"),
    "different first names: relatives or colleagues?": _l("different first names: relatives or colleagues?"),
}
SOCIAL_NETWORKS = ("linkedin", "x", "facebook", "instagram", "skype")
SOCIAL_LABELS = {
    "linkedin": "LinkedIn",
    "x": "X (Twitter)",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "skype": "Skype",
}


def lang() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "en"


def lookup_values(list_name: str) -> list[Any]:
    """The values of a configurable list, read once per request."""
    from crmcore.services import lookups

    cache = g.setdefault("crm_lookup_cache", {})
    if list_name not in cache:
        cache[list_name] = lookups.values(list_name)
    return cache[list_name]


def lookup_label(list_name: str, key: str | None) -> str:
    if not key:
        return ""
    for value in lookup_values(list_name):
        if value.key == key:
            return value.label_fr if lang() == "fr" else value.label_en
    return key


def lookup_choices(list_name: str, current: str | None = None) -> list[tuple[str, str]]:
    """(key, label) pairs for a select; a stored key that left the list is kept so nothing is lost."""
    choices = [(v.key, v.label_fr if lang() == "fr" else v.label_en) for v in lookup_values(list_name)]
    if current and current not in {key for key, _label in choices}:
        choices.append((current, current))
    return choices


def country_choices() -> list[tuple[str, str]]:
    from babel import Locale

    names = Locale.parse(lang()).territories
    return sorted(((code, names.get(code, name)) for code, name in countries().items()), key=lambda c: c[1])


def language_choices() -> list[tuple[str, str]]:
    from babel import Locale

    names = Locale.parse(lang()).languages
    return sorted(((code, names.get(code, name)) for code, name in languages().items()), key=lambda c: c[1])


def country_name(code: str | None) -> str:
    from babel import Locale

    return Locale.parse(lang()).territories.get(code, code) if code else ""


def language_name(code: str | None) -> str:
    from babel import Locale

    return Locale.parse(lang()).languages.get(code, code) if code else ""


def field_label(key: str | None) -> str:
    """The label of a contact field, a custom field (``custom.x``) or a path (``phones[1].number``)."""
    if not key:
        return ""
    if key.startswith("custom."):
        field_def = custom_fields().get(key[7:])
        return localize(field_def.label, lang()) if field_def else key[7:]
    if key.startswith("social."):
        network = key[7:]
        return SOCIAL_LABELS.get(network, network)
    if key.startswith("notes["):
        return str(FIELD_LABELS["body"])
    head, _sep, rest = key.partition("[")
    if rest:
        index, _close, tail = rest.partition("]")
        part = tail.lstrip(".")
        number = int(index) + 1 if index.isdigit() else index
        item = {"emails": _l("Email"), "phones": _l("Phone"), "addresses": _l("Address"), "tags": _l("Tag")}
        prefix = f"{item.get(head, head)} {number}"
        return f"{prefix} · {FIELD_LABELS[part]}" if part in FIELD_LABELS else prefix
    label = FIELD_LABELS.get(key)
    return str(label) if label is not None else key


def custom_fields() -> dict[str, Any]:
    from crmcore.services.fields import all_fields

    if "crm_custom_fields" not in g:
        g.crm_custom_fields = all_fields()
    return g.crm_custom_fields


def yes_no(value: Any) -> str:
    return str(_l("Yes")) if value else str(_l("No"))


def _babel_context() -> tuple[Locale, Any]:
    """The page's locale and time zone, looked up once per request (Flask-Babel's own helpers look them
    up on every call, which is most of the cost of a history tab with hundreds of dates)."""
    if "crm_babel_context" not in g:
        g.crm_babel_context = (get_locale() or Locale.parse("en"), get_timezone())
    return g.crm_babel_context


def when(value: dt.datetime | dt.date | None, date_only: bool = False) -> str:
    """A date or a moment in the page's language and time zone ("22 nov. 2026, 07:35:26")."""
    if value is None:
        return ""
    locale, zone = _babel_context()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(zone)
        if date_only:
            return babel_dates.format_date(value.date(), "medium", locale=locale)
        return babel_dates.format_datetime(value, "medium", tzinfo=zone, locale=locale)
    return babel_dates.format_date(value, "medium", locale=locale)


def _user_name(user_id: Any) -> str:
    from crmcore.extensions import db
    from crmcore.models import User

    if not isinstance(user_id, int):
        return str(user_id)
    user = db.session.get(User, user_id)
    return user.display_name if user else f"#{user_id}"


def _contact_name(contact_id: Any) -> str:
    from crmcore.extensions import db
    from crmcore.models import Contact

    if not isinstance(contact_id, int):
        return str(contact_id)
    contact = db.session.get(Contact, contact_id)
    return f"{contact.display_name} ({contact.number})" if contact else f"#{contact_id}"


def format_value(field: str | None, value: Any) -> str:
    """A stored value as a person reads it: labels instead of keys, names instead of ids, Yes/No."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if field is None:
        return str(value)
    if isinstance(value, bool):
        return yes_no(value)
    if field == "kind":
        return str(KIND_LABELS.get(value, value))
    if field == "status":
        return str(STATUS_LABELS.get(value, value))
    if field == "visibility":
        return str(VISIBILITY_SHORT.get(value, value))
    if field in ("salutation", "origin", "role"):
        return lookup_label(field, value)
    if field == "country":
        return country_name(value)
    if field == "language":
        return language_name(value)
    if field in ("organization_id", "reports_to_id"):
        return _contact_name(value)
    if field == "team_id":
        from crmcore.extensions import db
        from crmcore.models import Team

        team = db.session.get(Team, value) if isinstance(value, int) else None
        return team.name if team else f"#{value}"
    if field == "owners":
        return ", ".join(_user_name(v) for v in value)
    if field == "tags":
        return ", ".join(map(str, value))
    if field == "emails":
        return "; ".join(
            e.get("address", "")
            + (f" ({EMAIL_LABELS.get(e.get('label'), e.get('label'))})" if e.get("label") else "")
            + (f", {_l('primary')}" if e.get("primary") else "")
            for e in value
        )
    if field == "phones":
        return "; ".join(
            p.get("number", "")
            + (f" ({lookup_label('phone_type', p.get('type'))})" if p.get("type") else "")
            + "".join(f", {CONSENT_LABELS[f]}" for f in ("sms", "whatsapp", "viber", "calls") if p.get(f))
            for p in value
        )
    if field == "addresses":
        return "; ".join(f"{ADDRESS_KINDS.get(a.get('kind'), a.get('kind'))}: {one_line(a)}" for a in value)
    if field == "social":
        return ", ".join(f"{SOCIAL_LABELS.get(k, k)}: {v}" for k, v in value.items())
    if field.startswith("custom."):
        field_def = custom_fields().get(field[7:])
        if field_def is not None and field_def.type == "boolean":
            return yes_no(value)
        if isinstance(value, list):
            return ", ".join(map(str, value))
        return str(value)
    if field == "warnings" and isinstance(value, dict):
        return f"{WARNING_LEVELS.get(value.get('level'), value.get('level'))}: {value.get('message')}"
    if field.startswith("notes[") and isinstance(value, dict):
        return f"{NOTE_KINDS.get(value.get('kind'), value.get('kind'))}: {value.get('body')}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def one_line(address: Any) -> str:
    get = address.get if isinstance(address, dict) else lambda k: getattr(address, k)
    city = " ".join(p for p in (get("postal_code"), get("city")) if p)
    parts = [get("street"), get("street2"), city, get("region"), country_name(get("country"))]
    return ", ".join(p for p in parts if p)


def _consent_label(key: str) -> str:
    flag, _sep, target = key.partition(":")
    if key == "do_not_email":
        return str(FIELD_LABELS["do_not_email"])
    if flag == "email":
        return f"{CONSENT_LABELS['accepts_email']} · {target}"
    return f"{CONSENT_LABELS.get(flag, flag)} · {target}"


def history_rows(entries: list[Any]) -> list[dict[str, Any]]:
    """History entries as readable rows: one per field (custom fields one per key), labels and values."""
    rows: list[dict[str, Any]] = []
    for entry in entries:
        base = {
            "id": entry.id,
            "at": entry.at,
            "when": when(entry.at),
            "who": entry.user.display_name if entry.user else str(_l("system")),
            "source": str(SOURCE_LABELS.get(entry.source, entry.source)),
            "action": entry.action,
            "action_label": str(HISTORY_ACTIONS.get(entry.action, entry.action)),
        }
        if entry.field is None:
            rows.append({**base, "field": "", "before": "", "after": ""})
        elif (
            entry.field == "custom"
            and isinstance(entry.old or {}, dict)
            and isinstance(entry.new or {}, dict)
        ):
            old, new = entry.old or {}, entry.new or {}
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    path = f"custom.{key}"
                    rows.append(
                        {
                            **base,
                            "field": field_label(path),
                            "before": format_value(path, old.get(key)),
                            "after": format_value(path, new.get(key)),
                        }
                    )
        elif entry.action == "consent":
            rows.append(
                {
                    **base,
                    "field": _consent_label(entry.field),
                    "before": "—" if entry.old is None else yes_no(entry.old),
                    "after": "—" if entry.new is None else yes_no(entry.new),
                }
            )
        else:
            rows.append(
                {
                    **base,
                    "field": field_label(entry.field),
                    "before": format_value(entry.field, entry.old),
                    "after": format_value(entry.field, entry.new),
                }
            )
    return rows


class UiHelpers:
    """The ``ui`` Jinja global."""

    FIELD_LABELS = FIELD_LABELS
    KIND_LABELS = KIND_LABELS
    STATUS_LABELS = STATUS_LABELS
    VISIBILITY_LABELS = VISIBILITY_LABELS
    VISIBILITY_SHORT = VISIBILITY_SHORT
    EMAIL_LABELS = EMAIL_LABELS
    ADDRESS_KINDS = ADDRESS_KINDS
    CONSENT_LABELS = CONSENT_LABELS
    SOURCE_LABELS = SOURCE_LABELS
    NOTE_KINDS = NOTE_KINDS
    WARNING_LEVELS = WARNING_LEVELS
    LOOKUP_LISTS = LOOKUP_LISTS
    FIELD_TYPES = FIELD_TYPES
    SOCIAL_NETWORKS = SOCIAL_NETWORKS
    SOCIAL_LABELS = SOCIAL_LABELS

    lang = staticmethod(lang)
    lookup_label = staticmethod(lookup_label)
    lookup_choices = staticmethod(lookup_choices)
    country_choices = staticmethod(country_choices)
    language_choices = staticmethod(language_choices)
    country_name = staticmethod(country_name)
    language_name = staticmethod(language_name)
    field_label = staticmethod(field_label)
    format_value = staticmethod(format_value)
    history_rows = staticmethod(history_rows)
    one_line = staticmethod(one_line)
    yes_no = staticmethod(yes_no)
    when = staticmethod(when)

    @staticmethod
    def duplicate_reasons() -> dict[str, str]:
        return {key: str(text) for key, text in DUPLICATE_REASONS.items()}

    @staticmethod
    def can_write(contact: Any) -> bool:
        from crmcore.auth import request_user
        from crmcore.services.access import can

        return can(contact, request_user(), "write")

    @staticmethod
    def localize(label: Any) -> str:
        return localize(label, lang()) if label else ""


ui = UiHelpers()
