"""Export: the contacts a user may see, streamed as CSV, JSON (the API's shape) or vCard.

Contacts are read page by page with the list's keyset pagination (:func:`list_contacts`, the same
access filter and filters as ``GET /api/v1/contacts``), so memory stays constant whatever the size.

The CSV columns are the import's canonical fields (see :mod:`crmcore.interchange.headers`), so an
exported file imports back: several emails or phones of one kind share a cell, separated by "; ";
cells a spreadsheet would run as a formula are written with a leading quote, which the importer
removes. Notes are not exported in CSV (one contact has many; the JSON and the API have them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import current_app
from sqlalchemy import select

from crmcore.errors import ValidationError
from crmcore.extensions import db
from crmcore.interchange.csv_io import write_rows
from crmcore.interchange.headers import ADDRESS_PARTS
from crmcore.models import Contact, User
from crmcore.services import lookups
from crmcore.services.collector import bulk_iteration
from crmcore.services.contact_query import list_contacts
from crmcore.services.fields import all_fields
from crmcore.services.serialize import contact_to_dict

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "json": ("application/json", "json"),
    "vcf": ("text/vcard; charset=utf-8", "vcf"),
}
OTHER_ADDRESSES = ("billing", "shipping", "personal", "other")
PAGE = 500


def iter_pages(user: User | None = None, **filters: Any) -> Iterator[list[Contact]]:
    """Pages of the contacts ``user`` may see (filters as :func:`list_contacts`), by keyset."""
    limit = min(PAGE, current_app.config["MAX_PAGE_SIZE"])
    cursor = None
    filters.setdefault("sort", "name")
    while True:
        page = list_contacts(user, limit=limit, cursor=cursor, **filters)
        if page.items:
            yield page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def iter_contacts(user: User | None = None, **filters: Any) -> Iterator[Contact]:
    for page in iter_pages(user, **filters):
        yield from page


def csv_header() -> list[str]:
    phone_types = [key for key in sorted(lookups.keys("phone_type")) if key not in ("work", "mobile")]
    return [
        "number",
        "kind",
        "salutation",
        "first_name",
        "last_name",
        "name",
        "organization",
        "job_title",
        "department",
        "role",
        "email",
        "email.home",
        "email.other",
        "phone",
        "mobile",
        *(f"phone.{key}" for key in phone_types),
        *ADDRESS_PARTS,
        *(f"address.{kind}.{part}" for kind in OTHER_ADDRESSES for part in ADDRESS_PARTS),
        "birthday",
        "website",
        "language",
        "status",
        "is_supplier",
        "origin",
        "visibility",
        "do_not_email",
        "external_id",
        "tags",
        "description",
        *(f"custom.{key}" for key in all_fields()),
        "created_at",
        "updated_at",
    ]


SCALAR_COLUMNS = (
    "number",
    "kind",
    "salutation",
    "first_name",
    "last_name",
    "name",
    "job_title",
    "department",
    "role",
    "birthday",
    "website",
    "language",
    "status",
    "is_supplier",
    "origin",
    "visibility",
    "do_not_email",
    "external_id",
    "tags",
    "description",
    "created_at",
    "updated_at",
)


def csv_row(contact: Contact, header: list[str], organizations: dict[int, str]) -> list[Any]:
    data = contact_to_dict(contact)
    values: dict[str, Any] = {key: data[key] for key in SCALAR_COLUMNS}
    values["organization"] = organizations.get(contact.organization_id) if contact.organization_id else None
    for email in sorted(data["emails"], key=lambda e: not e["primary"]):
        column = "email" if email["label"] == "work" else f"email.{email['label']}"
        values.setdefault(column, []).append(email["address"])
    for phone in data["phones"]:
        column = {"work": "phone", "mobile": "mobile"}.get(phone["type"], f"phone.{phone['type']}")
        values.setdefault(column, []).append(phone["number"])
    for address in data["addresses"]:
        prefix = "" if address["kind"] == "main" else f"address.{address['kind']}."
        for part in ADDRESS_PARTS:
            values.setdefault(prefix + part, address[part])
    if not values.get("country"):
        values["country"] = data["country"]
    for key, value in data["custom"].items():
        values[f"custom.{key}"] = ", ".join(map(str, value)) if isinstance(value, list) else value
    return [values.get(column) for column in header]


def export_csv(user: User | None = None, bom: bool = True, **filters: Any) -> Iterator[str]:
    header = csv_header()

    def rows() -> Iterator[list[Any]]:
        for page in iter_pages(user, **filters):
            wanted = {c.organization_id for c in page if c.organization_id}
            names = (
                dict(db.session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(wanted))).all())
                if wanted
                else {}
            )
            for contact in page:
                yield csv_row(contact, header, names)

    return bulk_iteration(write_rows(header, rows(), bom=bom))


def export_json(user: User | None = None, **filters: Any) -> Iterator[str]:
    """A JSON array of contacts in the API's shape, one contact per line."""
    return bulk_iteration(_json_chunks(user, **filters))


def _json_chunks(user: User | None = None, **filters: Any) -> Iterator[str]:
    yield "["
    first = True
    for contact in iter_contacts(user, **filters):
        yield ("\n" if first else ",\n") + json.dumps(contact_to_dict(contact), ensure_ascii=False)
        first = False
    yield "\n]\n"


def export_vcf(user: User | None = None, version: str = "3.0", **filters: Any) -> Iterator[str]:
    from crmcore.interchange.vcard import write_cards

    return bulk_iteration(write_cards(iter_contacts(user, **filters), version))


def export(format: str, user: User | None = None, **filters: Any) -> Iterator[str]:
    """The export of ``format`` (csv, json, vcf) as chunks of text."""
    if format == "csv":
        return export_csv(user, **filters)
    if format == "json":
        return export_json(user, **filters)
    if format == "vcf":
        return export_vcf(user, **filters)
    raise ValidationError({"format": [f"must be one of: {', '.join(FORMATS)}"]})


def check_filters(format: str, **filters: Any) -> None:
    """Raise ValidationError now for a bad format or filter (a streamed answer cannot turn into a 422)."""
    if format not in FORMATS:
        raise ValidationError({"format": [f"must be one of: {', '.join(FORMATS)}"]})
    list_contacts(None, limit=1, **{k: v for k, v in filters.items() if k != "version"})
