"""Notes on a contact: internal ones, and customer ones printed on generated documents."""

from __future__ import annotations

from sqlalchemy import insert, select

from crmcore.errors import NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, HistoryEntry, Note, User, utcnow
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


def list_notes(
    contact_id: int, user: User | None = None, kind: str | None = None, include_deleted: bool = False
) -> list[Note]:
    contact = get_contact(contact_id, user, include_deleted=include_deleted)
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


def check_note(body: str | None, kind: str = "internal") -> str:
    """The note text as it will be stored; ValidationError when it cannot be (empty, too long, bad kind)."""
    return _check(body, kind)


def add_notes(
    items: list[tuple[Contact, str]], kind: str = "internal", user: User | None = None, source: str = "import"
) -> list[int]:
    """Add one note to each contact of ``items`` (``(contact, checked body)``) with a few statements:
    the bulk path of :func:`add_note` for imports (same rows and history entries). The caller has
    just created these contacts or checked it may change them. Returns the note ids in order."""
    if not items:
        return []
    now = utcnow()
    author = user.id if user else None
    rows = [
        {
            "contact_id": contact.id,
            "kind": kind,
            "body": body,
            "author_id": author,
            "created_at": now,
            "updated_at": now,
        }
        for contact, body in items
    ]
    ids = list(
        db.session.execute(
            insert(Note.__table__).returning(Note.__table__.c.id, sort_by_parameter_order=True), rows
        ).scalars()
    )
    entries = []
    for (contact, body), note_id in zip(items, ids, strict=True):
        entries.extend(
            history.entry_rows(
                contact, "note", user, source, {f"notes[{note_id}]": (None, {"kind": kind, "body": body})}
            )
        )
    db.session.execute(insert(HistoryEntry), entries)
    return ids


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
