"""The audit trail: who changed what, when and from where; consent proofs are entries too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import insert, select

from crmcore.extensions import db
from crmcore.models import Contact, HistoryEntry, User, user_id_of, utcnow

CONSENT_FLAGS = ("sms", "whatsapp", "viber", "calls")


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Top-level fields whose value differs: ``{field: (old, new)}``."""
    return {key: (old.get(key), new.get(key)) for key in new if old.get(key) != new.get(key)}


def consent_state(state: Mapping[str, Any]) -> dict[str, bool]:
    """Every consent flag of a contact state, keyed ``email:<address>`` / ``<flag>:<e164>``."""
    flags: dict[str, bool] = {}
    for email in state.get("emails") or []:
        flags[f"email:{email['address'].lower()}"] = bool(email.get("accepts_email"))
    for phone in state.get("phones") or []:
        for flag in CONSENT_FLAGS:
            flags[f"{flag}:{phone.get('e164')}"] = bool(phone.get(flag))
    if "do_not_email" in state:
        flags["do_not_email"] = bool(state.get("do_not_email"))
    return flags


def consent_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[bool | None, bool]]:
    before, after = consent_state(old), consent_state(new)
    changes: dict[str, tuple[bool | None, bool]] = {}
    for key, value in after.items():
        previous = before.get(key)
        # A new address or phone without consent is not a consent change; granting one is.
        if previous != value and (previous is not None or value):
            changes[key] = (previous, value)
    return changes


def record(
    contact: Contact,
    action: str,
    user: User | None,
    source: str,
    changes: Mapping[str, tuple[Any, Any]] | None = None,
    snapshot: Any = None,
    revision: int | None = None,
) -> None:
    """Write history entries: one per changed field, or a single one carrying ``snapshot`` as its new value."""
    db.session.execute(
        insert(HistoryEntry), entry_rows(contact, action, user, source, changes, snapshot, revision)
    )


def entry_rows(
    contact: Any,
    action: str,
    user: User | None,
    source: str,
    changes: Mapping[str, tuple[Any, Any]] | None = None,
    snapshot: Any = None,
    revision: int | None = None,
) -> list[dict[str, Any]]:
    """The rows :func:`record` inserts (``contact`` needs only ``id`` and ``version``): bulk writers
    gather them for many contacts and insert them at once."""
    base = {
        "contact_id": contact.id,
        "user_id": user_id_of(user),
        "source": source,
        "at": utcnow(),
        "revision": revision if revision is not None else contact.version,
    }
    if changes:
        return [
            {**base, "action": action, "field": field, "old": old, "new": new}
            for field, (old, new) in changes.items()
        ]
    return [{**base, "action": action, "field": None, "old": None, "new": snapshot}]


#: The columns of :func:`creation_rows`' rows.
CREATION_KEYS = ("contact_id", "user_id", "source", "at", "revision", "action", "field", "old", "new")


def creation_rows(
    contact_id: int,
    snapshot: Any,
    consents: Mapping[str, tuple[Any, Any]],
    user_id: int | None,
    source: str,
    at: Any,
) -> list[tuple[Any, ...]]:
    """The rows (values of :data:`CREATION_KEYS`) of a new contact's "create" entry (``snapshot``) and
    of its consent proofs, as :func:`entry_rows` gives them, for writers of thousands of contacts a
    second (no clock or user lookup per contact)."""
    base = (contact_id, user_id, source, at, 1)
    rows = [(*base, "create", None, None, snapshot)]
    rows.extend((*base, "consent", field, old, new) for field, (old, new) in consents.items())
    return rows


def snapshot_json(snapshot: Mapping[str, Any]) -> bytes:
    """The JSON of a snapshot, to complete later with :func:`completed_snapshot`."""
    return orjson.dumps(snapshot, option=orjson.OPT_NON_STR_KEYS)


def completed_snapshot(partial: bytes, more: Mapping[str, Any]) -> orjson.Fragment:
    """The snapshot whose JSON is ``partial`` (:func:`snapshot_json`) with the keys of ``more`` added,
    ready for a JSON column: it is stored as it is, not encoded again (the engine's serializer is
    orjson, see ``crmcore.app.dump_json``)."""
    head = orjson.dumps(more, option=orjson.OPT_NON_STR_KEYS)
    if partial == b"{}":
        return orjson.Fragment(head)
    if head == b"{}":
        return orjson.Fragment(partial)
    return orjson.Fragment(head[:-1] + b"," + partial[1:])  # {"a":1} + {"b":2} -> {"a":1,"b":2}


def entries(contact_id: int, limit: int = 500, before_id: int | None = None) -> list[HistoryEntry]:
    query = select(HistoryEntry).where(HistoryEntry.contact_id == contact_id)
    if before_id:
        query = query.where(HistoryEntry.id < before_id)
    return list(db.session.scalars(query.order_by(HistoryEntry.id.desc()).limit(limit)))


def entry_to_dict(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "action": entry.action,
        "field": entry.field,
        "old": entry.old,
        "new": entry.new,
        "user_id": entry.user_id,
        "user": entry.user.display_name if entry.user else None,
        "source": entry.source,
        "at": entry.at.isoformat(),
        "revision": entry.revision,
    }
