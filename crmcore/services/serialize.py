"""The contact's JSON shape (public and fixed: see docs/api.md), built from the models."""

from __future__ import annotations

from typing import Any

from crmcore.models import Contact

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


def contact_to_dict(contact: Contact) -> dict[str, Any]:
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
        "emails": [email_to_dict(e) for e in contact.emails],
        "phones": [phone_to_dict(p) for p in contact.phones],
        "addresses": [address_to_dict(a) for a in contact.addresses],
        "organization_id": contact.organization_id,
        "role": contact.role,
        "reports_to_id": contact.reports_to_id,
        "tags": [tag.name for tag in contact.tags],
        "custom": dict(contact.custom or {}),
        "owners": [user.id for user in contact.owners],
        "team_id": contact.team_id,
        "visibility": contact.visibility,
        "do_not_email": contact.do_not_email,
        "notify_owners": contact.notify_owners,
        "version": contact.version,
        "created_at": contact.created_at.isoformat() if contact.created_at else None,
        "updated_at": contact.updated_at.isoformat() if contact.updated_at else None,
    }


def audited_state(contact: Contact) -> dict[str, Any]:
    data = contact_to_dict(contact)
    for key in UNAUDITED:
        data.pop(key, None)
    return data
