"""Built-in plugin: vCard export (one contact, a selection, everything) and the store of vCard extras.

A card read by :func:`crmcore.interchange.vcard.read_cards` may carry properties the contact record
does not model: X- properties, item-group labels (``item1.X-ABLabel``), phones that phonenumbers
cannot read, an organization that is not (yet) a contact... They are kept in ``contact_vcard_extras``
(one row per property) and written back by every export, so a round trip through the CRM loses nothing.

Routes (plain blueprint, JSON errors like the rest of ``/api/v1``; every contact is read through
:func:`crmcore.services.contacts.get_contact` with the caller's rights):

* ``GET /api/v1/contacts/<id>/vcard?version=3.0|4.0|2.1``: one card (3.0 by default);
* ``GET /api/v1/vcards.vcf?ids=1&ids=2&version=...``: the selected contacts, or every contact the
  caller may see when no ``ids`` are given (streamed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request, stream_with_context
from sqlalchemy import ForeignKey, Integer, String, Text, delete, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.builtin.selection import selected_ids
from crmcore.plugin_api import Action, Contact, JSONType, User, UTCDateTime, db, hookimpl, utcnow

VERSIONS = ("3.0", "4.0", "2.1")


class VCardExtra(db.Model):
    """One property of an imported card that the contact record does not model, kept for re-export."""

    __tablename__ = "contact_vcard_extras"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: The card's group (``item1``), so a label stays with the property it labels.
    group: Mapped[str | None] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(120))
    #: ``{"TYPE": ["work", "pref"]}``: parameter names uppercase, values as read.
    params: Mapped[dict[str, list[str]]] = mapped_column(JSONType, default=dict)
    #: The value in vCard 3.0/4.0 escaped form, written back as it is.
    value: Mapped[str] = mapped_column(Text, default="")
    #: For a grouped extra: the modelled property its group belongs to (``EMAIL:john@example.com``,
    #: ``TEL:+33612345678``); the extra is dropped from exports once that property is gone.
    anchor: Mapped[str | None] = mapped_column(String(400))
    #: Set while the row belongs to a merge survivor: the merge and the contact it came from.
    merge_id: Mapped[int | None] = mapped_column(Integer, index=True)
    merged_from_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


@dataclass
class Extra:
    """An extra as the reader produces it (before it belongs to a contact)."""

    name: str
    value: str
    params: dict[str, list[str]] = field(default_factory=dict)
    group: str | None = None
    anchor: str | None = None


def replace_extras(contact_id: int, extras: Sequence[Extra]) -> None:
    """Make ``extras`` the vCard extras of ``contact_id`` (inside the caller's transaction)."""
    db.session.execute(delete(VCardExtra).where(VCardExtra.contact_id == contact_id))
    if extras:
        now = utcnow()
        db.session.execute(
            insert(VCardExtra),
            [
                {
                    "contact_id": contact_id,
                    "position": index,
                    "group": extra.group,
                    "name": extra.name,
                    "params": extra.params,
                    "value": extra.value,
                    "anchor": extra.anchor,
                    "created_at": now,
                }
                for index, extra in enumerate(extras)
            ],
        )


def extras_of(contact_ids: Iterable[int]) -> dict[int, list[VCardExtra]]:
    """The extras of each contact, in card order (one query)."""
    ids = list(contact_ids)
    result: dict[int, list[VCardExtra]] = {contact_id: [] for contact_id in ids}
    if not ids:
        return result
    rows = db.session.scalars(
        select(VCardExtra)
        .where(VCardExtra.contact_id.in_(ids))
        .order_by(VCardExtra.contact_id, VCardExtra.position, VCardExtra.id)
    )
    for row in rows:
        result[row.contact_id].append(row)
    return result


# -- merge: the survivor carries the merged contacts' extras; an undo gives them back ---------------


@hookimpl
def contact_merged(survivor: Contact, merged: Sequence[Contact], merge_id: int) -> None:
    last = db.session.scalar(
        select(VCardExtra.position)
        .where(VCardExtra.contact_id == survivor.id)
        .order_by(VCardExtra.position.desc())
        .limit(1)
    )
    offset = (last if last is not None else -1) + 1
    for source in merged:
        rows = list(
            db.session.scalars(
                select(VCardExtra)
                .where(VCardExtra.contact_id == source.id)
                .order_by(VCardExtra.position, VCardExtra.id)
            )
        )
        for row in rows:
            # Groups are per card: prefix them so two cards' "item1" never mix.
            row.group = f"m{source.id}{row.group}" if row.group else None
            row.contact_id = survivor.id
            row.position = offset
            row.merge_id = merge_id
            row.merged_from_id = source.id
            offset += 1
    db.session.flush()


@hookimpl
def contact_merge_undone(survivor: Contact, restored: Sequence[Contact], merge_id: int) -> None:
    wanted = {contact.id for contact in restored}
    rows = db.session.scalars(
        select(VCardExtra).where(VCardExtra.merge_id == merge_id, VCardExtra.contact_id == survivor.id)
    )
    for row in rows:
        if row.merged_from_id not in wanted:
            continue
        prefix = f"m{row.merged_from_id}"
        if row.group and row.group.startswith(prefix):
            row.group = row.group[len(prefix) :] or None
        row.contact_id = row.merged_from_id
        row.merge_id = None
        row.merged_from_id = None
    db.session.flush()


# -- UI contributions -------------------------------------------------------------------------------


@hookimpl
def contact_actions(contact: Contact) -> list[Action]:
    return [
        Action(
            key="export_vcard",
            label={"en": "Export vCard", "fr": "Exporter la vCard"},
            url=f"/api/v1/contacts/{contact.id}/vcard",
            icon="download",
            order=60,
        )
    ]


@hookimpl
def register_mass_actions() -> list[Action]:
    return [
        Action(
            key="export_vcards",
            label={"en": "Export vCards", "fr": "Exporter les vCards"},
            url="/api/v1/vcards.vcf",
            icon="download",
            order=60,
        )
    ]


# -- routes -----------------------------------------------------------------------------------------

blueprint = Blueprint("builtin_vcard", __name__)


def _version() -> str:
    from crmcore.errors import ValidationError

    version = request.args.get("version", "3.0").strip()
    if version not in VERSIONS:
        raise ValidationError({"version": [f"must be one of: {', '.join(VERSIONS)}"]})
    return version


def _filename(text: str) -> str:
    import re

    from crmcore.services.text import fold

    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")[:60] or "contact"


def _vcard_response(body: Any, filename: str, version: str) -> Response:
    return Response(
        body,
        mimetype="text/vcard",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.vcf"',
            "Content-Type": f"text/vcard; charset=utf-8; version={version}",
        },
    )


@blueprint.get("/api/v1/contacts/<id:contact_id>/vcard")
def export_one(contact_id: int) -> Response:
    from crmcore.auth import request_user
    from crmcore.interchange.vcard import write_cards
    from crmcore.services.contacts import get_contact

    version = _version()
    contact = get_contact(contact_id, request_user())
    body = "".join(write_cards([contact], version))
    return _vcard_response(body, _filename(contact.display_name), version)


def _selected(user: User | None, ids: list[int]) -> list[Contact]:
    from crmcore.services.contacts import get_contact

    return [get_contact(contact_id, user) for contact_id in ids]


def _all_visible(user: User | None) -> Iterator[Contact]:
    """Every contact ``user`` may see, one page at a time (the session is cleared between pages)."""
    from crmcore.services.contact_query import list_contacts

    cursor = None
    while True:
        page = list_contacts(user, limit=200, cursor=cursor)
        yield from page.items
        cursor = page.next_cursor
        if cursor is None:
            return
        db.session.expunge_all()


@blueprint.get("/api/v1/vcards.vcf")
def export_many() -> Response:
    from crmcore.auth import request_user
    from crmcore.interchange.vcard import write_cards

    version = _version()
    user = request_user()
    ids = selected_ids()
    # Access is checked for every selected id before the first byte is sent.
    contacts: Iterable[Contact] = _selected(user, ids) if ids else _all_visible(user)
    return _vcard_response(
        stream_with_context(write_cards(contacts, version)), "contacts" if not ids else "selection", version
    )


@hookimpl
def register_blueprints() -> list[Blueprint]:
    return [blueprint]
