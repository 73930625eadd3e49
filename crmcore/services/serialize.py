"""The contact's JSON shape (public and fixed: see docs/api.md), built from the models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from crmcore.extensions import db
from crmcore.models import (
    Contact,
    ContactAddress,
    ContactEmail,
    ContactPhone,
    Tag,
    contact_owners,
    contact_tags,
)

#: Fields the server computes; clients may send them back but they are ignored.
READ_ONLY = ("id", "number", "display_name", "created_at", "updated_at")
#: Fields not audited field by field (they change on every save).
UNAUDITED = ("id", "number", "display_name", "version", "created_at", "updated_at")


def email_to_dict(email: Any) -> dict[str, Any]:
    return {
        "address": email.address,
        "label": email.label,
        "primary": email.primary,
        "accepts_email": email.accepts_email,
    }


def phone_to_dict(phone: Any) -> dict[str, Any]:
    return {
        "number": phone.number,
        "e164": phone.e164,
        "type": phone.type,
        "sms": phone.sms,
        "whatsapp": phone.whatsapp,
        "viber": phone.viber,
        "calls": phone.calls,
    }


def address_to_dict(address: Any) -> dict[str, Any]:
    return {
        "kind": address.kind,
        "street": address.street,
        "street2": address.street2,
        "postal_code": address.postal_code,
        "city": address.city,
        "region": address.region,
        "country": address.country,
    }


def contact_to_dict(contact: Contact, lists: Mapping[str, Sequence[Any]] | None = None) -> dict[str, Any]:
    """The contact in the API's JSON shape. ``lists`` gives its emails, phones, addresses (rows), tag names
    and owner ids when they were read already (:func:`contacts_to_dicts`) instead of the ORM collections."""
    if lists is None:
        lists = {
            "emails": contact.emails,
            "phones": contact.phones,
            "addresses": contact.addresses,
            "tags": [tag.name for tag in contact.tags],
            "owners": [user.id for user in contact.owners],
        }
    return {
        "id": contact.id,
        "number": contact.number,
        "kind": contact.kind,
        "salutation": contact.salutation,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": contact.name,
        "display_name": contact.display_name,
        "job_title": contact.job_title,
        "department": contact.department,
        "birthday": contact.birthday.isoformat() if contact.birthday else None,
        "origin": contact.origin,
        "description": contact.description,
        "website": contact.website,
        "social": dict(contact.social or {}),
        "language": contact.language,
        "country": contact.country,
        "external_id": contact.external_id,
        "status": contact.status,
        "is_supplier": contact.is_supplier,
        "emails": [email_to_dict(e) for e in lists["emails"]],
        "phones": [phone_to_dict(p) for p in lists["phones"]],
        "addresses": [address_to_dict(a) for a in lists["addresses"]],
        "organization_id": contact.organization_id,
        "role": contact.role,
        "reports_to_id": contact.reports_to_id,
        "tags": list(lists["tags"]),
        "custom": dict(contact.custom or {}),
        "owners": list(lists["owners"]),
        "team_id": contact.team_id,
        "visibility": contact.visibility,
        "do_not_email": contact.do_not_email,
        "notify_owners": contact.notify_owners,
        "version": contact.version,
        "created_at": contact.created_at.isoformat() if contact.created_at else None,
        "updated_at": contact.updated_at.isoformat() if contact.updated_at else None,
    }


def contacts_to_dicts(contacts: Sequence[Contact]) -> list[dict[str, Any]]:
    """:func:`contact_to_dict` for a page of contacts loaded without their collections: each list is read
    with one query for the whole page, as plain rows (a third of the cost of loading ORM objects)."""
    ids = [contact.id for contact in contacts]
    lists: dict[int, dict[str, list[Any]]] = {
        i: {"emails": [], "phones": [], "addresses": [], "tags": [], "owners": []} for i in ids
    }
    if ids:
        for name, model in (
            ("emails", ContactEmail),
            ("phones", ContactPhone),
            ("addresses", ContactAddress),
        ):
            table = model.__table__
            rows = select(table).where(table.c.contact_id.in_(ids)).order_by(table.c.position)
            for row in db.session.execute(rows):
                lists[row.contact_id][name].append(row)
        tags = (
            select(contact_tags.c.contact_id, Tag.name)
            .join(Tag, Tag.id == contact_tags.c.tag_id)
            .where(contact_tags.c.contact_id.in_(ids))
            .order_by(Tag.name)
        )
        for contact_id, name in db.session.execute(tags):
            lists[contact_id]["tags"].append(name)
        owners = (
            select(contact_owners.c.contact_id, contact_owners.c.user_id)
            .where(contact_owners.c.contact_id.in_(ids))
            .order_by(contact_owners.c.user_id)
        )
        for contact_id, user_id in db.session.execute(owners):
            lists[contact_id]["owners"].append(user_id)
    return [contact_to_dict(contact, lists[contact.id]) for contact in contacts]


def audited_state(contact: Contact) -> dict[str, Any]:
    data = contact_to_dict(contact)
    for key in UNAUDITED:
        data.pop(key, None)
    return data
