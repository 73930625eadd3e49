"""Custom fields: one definition (a :class:`FieldDef`) drives validation, storage, API, form and CSV.

Definitions come from the admin (rows of ``custom_field_definitions``) and from plugins (the
``register_custom_fields`` hook). Values live in the contact's ``custom`` JSON column.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import current_app
from sqlalchemy import select

from crmcore.contributions import FIELD_TYPES, ContributionError, FieldDef
from crmcore.errors import Conflict, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import CustomFieldDefinition
from crmcore.services import reference
from crmcore.services.phones import InvalidPhone, to_e164
from crmcore.services.transactions import transaction
from crmcore.state import crm_state

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
DEFAULT_MAX = {"text": 500, "long_text": 20000, "url": 2000, "email": 254}
_TRUE = {"true", "1", "yes", "oui", "y", "o", "x", "on"}
_FALSE = {"false", "0", "no", "non", "n", ""}


def _from_row(row: CustomFieldDefinition) -> FieldDef:
    return FieldDef(
        key=row.key,
        label={"en": row.label_en, "fr": row.label_fr},
        type=row.type,  # type: ignore[arg-type]
        kinds=tuple(row.kinds),
        required=row.required,
        choices=tuple(row.choices or ()),
        help=row.help,
        max_length=row.max_length,
        order=row.position,
        source="admin",
    )


def all_fields() -> dict[str, FieldDef]:
    """Every custom field by key: the admin's first, then the plugins' (a plugin cannot shadow an admin field)."""
    return dict(reference.current().fields)


def read_fields() -> dict[str, FieldDef]:
    """:func:`all_fields` read from the database (:mod:`crmcore.services.reference` keeps a copy)."""
    fields: dict[str, FieldDef] = {}
    for row in db.session.scalars(select(CustomFieldDefinition).order_by(CustomFieldDefinition.position)):
        fields[row.key] = _from_row(row)
    for field_def in crm_state().plugin_fields:
        fields.setdefault(field_def.key, field_def)
    return fields


def fields_for(kind: str, fields: dict[str, FieldDef] | None = None) -> list[FieldDef]:
    fields = all_fields() if fields is None else fields
    return sorted((f for f in fields.values() if kind in f.kinds), key=lambda f: (f.order, f.key))


def clean_value(field_def: FieldDef, value: Any, region: str | None = None) -> Any:
    """Return the stored form of ``value`` for ``field_def``, or raise ValueError saying why it is wrong.

    ``region``: the country of phone numbers written without a country code (the contact's, else the
    default country).

    Strings are accepted for every type so CSV and form input use the same path as JSON.
    """
    kind = field_def.type
    if kind in ("text", "long_text", "url", "email"):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        value = value.strip()
        limit = field_def.max_length or DEFAULT_MAX[kind]
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        if kind == "url" and value and not URL_RE.match(value):
            raise ValueError("must be an http(s) URL")
        if kind == "email" and value and not EMAIL_RE.match(value):
            raise ValueError("must be an email address")
        return value
    if kind == "integer":
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,18}\s*", value):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("must be an integer")
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("must be a decimal number")
        text = str(value).strip().replace(",", ".") if isinstance(value, str) else repr(value)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError("must be a decimal number") from None
        if not number.is_finite():
            raise ValueError("must be a finite decimal number")
        return format(number.normalize(), "f")
    if kind == "date":
        if isinstance(value, dt.date):
            return value.isoformat()
        if not isinstance(value, str):
            raise ValueError("must be a date (YYYY-MM-DD)")
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("must be true or false")
    if kind == "choice":
        if value not in field_def.choices:
            raise ValueError(f"must be one of: {', '.join(field_def.choices)}")
        return value
    if kind == "multi_choice":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ValueError("must be a list of choices")
        wrong = [v for v in value if v not in field_def.choices]
        if wrong:
            raise ValueError(f"{', '.join(map(str, wrong))} not among: {', '.join(field_def.choices)}")
        return list(dict.fromkeys(value))
    if kind == "phone":
        if not isinstance(value, str):
            raise ValueError("must be a phone number")
        try:
            return to_e164(value, region or current_app.config.get("DEFAULT_COUNTRY"))
        except InvalidPhone as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"unsupported type {kind}")  # pragma: no cover - FieldDef validates types


def clean_custom(
    kind: str,
    current: dict[str, Any],
    changes: dict[str, Any] | None,
    errors: dict[str, list[str]],
    fields: dict[str, FieldDef] | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Merge ``changes`` (None values remove a key) into ``current`` and validate the result for ``kind``
    (``region``: see :func:`clean_value`)."""
    fields = all_fields() if fields is None else fields
    result = dict(current)
    for key, value in (changes or {}).items():
        field_def = fields.get(key)
        if field_def is None:
            errors.setdefault(f"custom.{key}", []).append("no such custom field")
            continue
        if kind not in field_def.kinds:
            errors.setdefault(f"custom.{key}", []).append(f"this field does not apply to a {kind}")
            continue
        if value is None or value == "" or value == []:
            result.pop(key, None)
            continue
        try:
            result[key] = clean_value(field_def, value, region)
        except ValueError as exc:
            errors.setdefault(f"custom.{key}", []).append(str(exc))
    for field_def in fields.values():
        if field_def.required and kind in field_def.kinds and result.get(field_def.key) in (None, "", []):
            errors.setdefault(f"custom.{field_def.key}", []).append("is required")
    # Values of fields that no longer apply (kind changed, field removed) are kept, not lost.
    return result


# -- admin definitions ------------------------------------------------------------------------------


def create_definition(data: dict[str, Any]) -> CustomFieldDefinition:
    key = data.get("key", "")
    label_en = data.get("label_en") or data.get("label") or ""
    if not label_en.strip():
        raise ValidationError({"label_en": ["a label is required"]})
    try:
        field_def = FieldDef(
            key=key,
            label=label_en,
            type=data.get("type", "text"),
            kinds=tuple(data.get("kinds") or ("person", "organization")),
            required=bool(data.get("required")),
            choices=tuple(data.get("choices") or ()),
            max_length=data.get("max_length"),
        )
    except ContributionError as exc:
        raise ValidationError({_field_of(str(exc)): [str(exc)]}) from None
    with transaction():
        if field_def.key in all_fields():
            raise Conflict(f"custom field {key!r} already exists", field="key")
        row = CustomFieldDefinition(
            key=field_def.key,
            label_en=label_en.strip(),
            label_fr=(data.get("label_fr") or label_en).strip(),
            type=field_def.type,
            kinds=list(field_def.kinds),
            required=field_def.required,
            choices=list(field_def.choices),
            help=data.get("help"),
            max_length=field_def.max_length,
            position=data.get("position") or 100,
        )
        db.session.add(row)
        reference.changed()
    return row


def _field_of(message: str) -> str:
    for name in ("key", "type", "kinds", "choices"):
        if name in message:
            return name
    return "_record"


def get_definition(key: str) -> CustomFieldDefinition:
    row = db.session.scalar(select(CustomFieldDefinition).where(CustomFieldDefinition.key == key))
    if row is None:
        if key in all_fields():
            raise Conflict(f"custom field {key!r} is defined by a plugin and cannot be changed here")
        raise NotFound(f"custom field {key!r} not found")
    return row


def update_definition(key: str, data: dict[str, Any]) -> CustomFieldDefinition:
    with transaction():
        row = get_definition(key)
        if "type" in data and data["type"] != row.type:
            raise ValidationError(
                {"type": ["the type of an existing field cannot change; create a new field"]}
            )
        merged = {
            "label_en": data.get("label_en", row.label_en),
            "kinds": data.get("kinds", row.kinds),
            "required": data.get("required", row.required),
            "choices": data.get("choices", row.choices),
            "max_length": data.get("max_length", row.max_length),
        }
        if not (merged["label_en"] or "").strip():
            raise ValidationError({"label_en": ["a label is required"]})
        try:
            FieldDef(
                key=row.key,
                label=merged["label_en"],
                type=row.type,  # type: ignore[arg-type]
                kinds=tuple(merged["kinds"]),
                choices=tuple(merged["choices"] or ()),
            )
        except ContributionError as exc:
            raise ValidationError({_field_of(str(exc)): [str(exc)]}) from None
        row.label_en = merged["label_en"]
        row.label_fr = data.get("label_fr", row.label_fr)
        row.kinds = list(merged["kinds"])
        row.required = bool(merged["required"])
        row.choices = list(merged["choices"] or [])
        row.max_length = merged["max_length"]
        row.help = data.get("help", row.help)
        row.position = data.get("position", row.position)
        reference.changed()
    return row


def delete_definition(key: str) -> None:
    """Remove a definition. Stored values stay in each contact's JSON (recreating the field brings them back)."""
    with transaction():
        db.session.delete(get_definition(key))
        reference.changed()


def definition_to_dict(field_def: FieldDef) -> dict[str, Any]:
    label = field_def.label
    labels = {"en": label, "fr": label} if isinstance(label, str) else dict(label)
    return {
        "key": field_def.key,
        "label_en": labels.get("en") or next(iter(labels.values())),
        "label_fr": labels.get("fr") or labels.get("en") or next(iter(labels.values())),
        "type": field_def.type,
        "kinds": list(field_def.kinds),
        "required": field_def.required,
        "choices": list(field_def.choices),
        "max_length": field_def.max_length,
        "help": field_def.help if isinstance(field_def.help, (str, type(None))) else dict(field_def.help),
        "position": field_def.order,
        "source": field_def.source,
    }


def json_schema(field_def: FieldDef) -> dict[str, Any]:
    """The OpenAPI/JSON-schema description of a custom field's value (used by the API document)."""
    from crmcore.contributions import localize

    schema: dict[str, Any] = {
        "text": {"type": "string", "maxLength": field_def.max_length or DEFAULT_MAX["text"]},
        "long_text": {"type": "string", "maxLength": field_def.max_length or DEFAULT_MAX["long_text"]},
        "integer": {"type": "integer"},
        "decimal": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "decimal as a string"},
        "date": {"type": "string", "format": "date"},
        "boolean": {"type": "boolean"},
        "choice": {"type": "string", "enum": list(field_def.choices)},
        "multi_choice": {"type": "array", "items": {"type": "string", "enum": list(field_def.choices)}},
        "url": {"type": "string", "format": "uri"},
        "email": {"type": "string", "format": "email"},
        "phone": {"type": "string", "description": "stored in E.164"},
    }[field_def.type]
    schema["title"] = localize(field_def.label)
    schema["nullable"] = True
    schema["x-kinds"] = list(field_def.kinds)
    schema["x-source"] = field_def.source
    if field_def.required:
        schema["x-required"] = True
    return schema


__all__ = ["FIELD_TYPES", "all_fields", "clean_custom", "clean_value", "fields_for"]
