"""Notes on a contact: internal ones, and customer ones printed on generated documents."""

from __future__ import annotations

from sqlalchemy import select

from crmcore.errors import NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Note, User, utcnow
from crmcore.services import history
from crmcore.services.contacts import get_contact
from crmcore.services.transactions import transaction

NOTE_KINDS = ("internal", "customer")
MAX_NOTE = 20000


def _check(body: str | None, kind: str) -> str:
    errors: dict[str, list[str]] = {}
    text = (body or "").strip()
    if not text:
        errors["body"] = ["is required"]
    elif len(text) > MAX_NOTE:
        errors["body"] = [f"must be at most {MAX_NOTE} characters"]
    if kind not in NOTE_KINDS:
        errors["kind"] = ["must be 'internal' or 'customer'"]
    if errors:
        raise ValidationError(errors)
    return text


def list_notes(contact_id: int, user: User | None = None, kind: str | None = None) -> list[Note]:
    contact = get_contact(contact_id, user)
    query = select(Note).where(Note.contact_id == contact.id)
    if kind:
        query = query.where(Note.kind == kind)
    return list(db.session.scalars(query.order_by(Note.created_at.desc(), Note.id.desc())))


def add_note(
    contact_id: int, body: str, kind: str = "internal", user: User | None = None, source: str = "api"
) -> Note:
    text = _check(body, kind)
    with transaction():
        contact = get_contact(contact_id, user, "write")
        note = Note(contact_id=contact.id, kind=kind, body=text, author_id=user.id if user else None)
        db.session.add(note)
        db.session.flush()
        history.record(
            contact, "note", user, source, {f"notes[{note.id}]": (None, {"kind": kind, "body": text})}
        )
    return note


def _get_note(contact_id: int, note_id: int) -> Note:
    note = db.session.get(Note, note_id)
    if note is None or note.contact_id != contact_id:
        raise NotFound(f"note {note_id} not found on contact {contact_id}")
    return note


def update_note(
    contact_id: int,
    note_id: int,
    body: str | None = None,
    kind: str | None = None,
    user: User | None = None,
    source: str = "api",
) -> Note:
    with transaction():
        contact = get_contact(contact_id, user, "write")
        note = _get_note(contact.id, note_id)
        old = {"kind": note.kind, "body": note.body}
        new_kind = kind or note.kind
        note.body = _check(body if body is not None else note.body, new_kind)
        note.kind = new_kind
        note.updated_at = utcnow()
        history.record(
            contact,
            "note",
            user,
            source,
            {f"notes[{note.id}]": (old, {"kind": note.kind, "body": note.body})},
        )
    return note


def delete_note(contact_id: int, note_id: int, user: User | None = None, source: str = "api") -> None:
    with transaction():
        contact = get_contact(contact_id, user, "write")
        note = _get_note(contact.id, note_id)
        history.record(
            contact,
            "note",
            user,
            source,
            {f"notes[{note.id}]": ({"kind": note.kind, "body": note.body}, None)},
        )
        db.session.delete(note)


def note_to_dict(note: Note) -> dict[str, object]:
    return {
        "id": note.id,
        "kind": note.kind,
        "body": note.body,
        "author_id": note.author_id,
        "author": note.author.display_name if note.author else None,
        "created_at": note.created_at.isoformat(),
        "updated_at": note.updated_at.isoformat(),
    }
