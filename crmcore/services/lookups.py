"""Configurable lists: salutations, origins (lead sources), roles and phone types."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from crmcore.errors import Conflict, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, ContactPhone, LookupValue
from crmcore.models.settings import LOOKUP_LISTS
from crmcore.services import reference
from crmcore.services.text import fold
from crmcore.services.transactions import transaction

_KEY = re.compile(r"^[a-z0-9][a-z0-9_]{0,59}$")


def values(list_name: str) -> list[LookupValue]:
    return list(
        db.session.scalars(
            select(LookupValue)
            .where(LookupValue.list == list_name)
            .order_by(LookupValue.position, LookupValue.id)
        )
    )


def keys(list_name: str) -> set[str]:
    return set(db.session.scalars(select(LookupValue.key).where(LookupValue.list == list_name)))


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", fold(label)).strip("_")[:60] or "value"


def create(
    list_name: str,
    label_en: str,
    label_fr: str | None = None,
    key: str | None = None,
    position: int | None = None,
) -> LookupValue:
    if list_name not in LOOKUP_LISTS:
        raise NotFound(f"unknown list {list_name!r}")
    errors: dict[str, list[str]] = {}
    if not (label_en or "").strip():
        errors["label_en"] = ["a label is required"]
    key = key or _slug(label_en or "")
    if not _KEY.match(key):
        errors["key"] = ["use lowercase letters, digits and underscores"]
    if errors:
        raise ValidationError(errors)
    with transaction():
        if key in keys(list_name):
            raise Conflict(f"{list_name} {key!r} already exists", field="key")
        if position is None:
            position = (
                db.session.scalar(select(func.max(LookupValue.position)).where(LookupValue.list == list_name))
                or 0
            ) + 10
        value = LookupValue(
            list=list_name,
            key=key,
            label_en=label_en.strip(),
            label_fr=(label_fr or label_en).strip(),
            position=position,
        )
        db.session.add(value)
        reference.changed()
    return value


def get(list_name: str, key: str) -> LookupValue:
    value = db.session.scalar(
        select(LookupValue).where(LookupValue.list == list_name, LookupValue.key == key)
    )
    if value is None:
        raise NotFound(f"{list_name} {key!r} not found")
    return value


def update(
    list_name: str,
    key: str,
    label_en: str | None = None,
    label_fr: str | None = None,
    position: int | None = None,
) -> LookupValue:
    with transaction():
        value = get(list_name, key)
        if label_en is not None:
            if not label_en.strip():
                raise ValidationError({"label_en": ["a label is required"]})
            value.label_en = label_en.strip()
        if label_fr is not None:
            value.label_fr = label_fr.strip() or value.label_en
        if position is not None:
            value.position = position
        reference.changed()
    return value


_USAGE = {
    "salutation": lambda key: select(func.count()).select_from(Contact).where(Contact.salutation == key),
    "origin": lambda key: select(func.count()).select_from(Contact).where(Contact.origin == key),
    "role": lambda key: select(func.count()).select_from(Contact).where(Contact.role == key),
    "phone_type": lambda key: select(func.count()).select_from(ContactPhone).where(ContactPhone.type == key),
}


def delete(list_name: str, key: str) -> None:
    with transaction():
        value = get(list_name, key)
        if value.builtin:
            raise Conflict(
                f"{list_name} {key!r} ships with crmcore and cannot be deleted; relabel it instead"
            )
        used = db.session.scalar(_USAGE[list_name](key)) or 0
        if used:
            raise Conflict(f"{list_name} {key!r} is used by {used} record(s); change them first", used=used)
        db.session.delete(value)
        reference.changed()
