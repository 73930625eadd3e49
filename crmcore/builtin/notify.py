"""Built-in plugin: emails to a contact's owners, after the commit only.

* "Notify responsibles on change" (``notify_owners``): each change emails the contact's owners.
* Assignment notices (``CRM_NOTIFY_ASSIGNMENT``, on by default): a user who becomes an owner of a
  contact, at its creation or when an update adds them, is told once, in their language, with a link
  to the contact. Not the acting user themself, not deactivated users, not for imports (an import
  commits a chunk at a time and has no "finished" event to hang one summary per assignee on).

Mails leave only after the transaction commits (a rolled-back change notifies nobody, a savepoint
rolled back takes its mails with it), and a mail failure is logged, never turned into a failed save.

Creations are seen through their "create" history entries as the service inserts them (acting user,
source and the snapshot's owner ids are all in those rows), not through ``contact_created``:
implementing that hook makes :func:`~crmcore.services.contacts.insert_contacts` load every new
contact with its lists, which halved the creation rate. Only contacts assigned to someone other than
their creator are read, just before the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session

from crmcore.plugin_api import Contact, User, db, hookimpl

log = logging.getLogger("crmcore.notify")
_PENDING = "crm_pending_notifications"
#: (transaction, contact id, owner id, acting user id) of creations, resolved into mails before the commit.
_ASSIGNED = "crm_pending_assignments"
#: Set on each app where this plugin is enabled: whether assignment notices are on.
_ENABLED = "crm_notify_assignment"
_HISTORY_TABLE = "contact_history"

TEXTS = {
    "en": {
        "subject": "{name} ({number}) was {verb} by {who}",
        "updated": "changed",
        "deleted": "deleted",
        "intro": "{who} {verb} the contact {name} ({number}):",
        "system": "the system",
        "assigned_subject": "Contact assigned to you: {name} ({number})",
        "assigned_intro": "{who} assigned you the contact {name} ({number}).",
        "assigned_link": "Open it: {link}",
    },
    "fr": {
        "subject": "{name} ({number}) a été {verb} par {who}",
        "updated": "modifié",
        "deleted": "supprimé",
        "intro": "{who} a {verb} le contact {name} ({number}) :",
        "system": "le système",
        "assigned_subject": "Contact qui vous est attribué : {name} ({number})",
        "assigned_intro": "{who} vous a attribué le contact {name} ({number}).",
        "assigned_link": "Pour l'ouvrir : {link}",
    },
}


def _show(value: Any) -> str:
    if value in (None, "", [], {}):
        return "—"
    if isinstance(value, list):
        return ", ".join(
            _show(v) if not isinstance(v, dict) else "; ".join(f"{k}={x}" for k, x in v.items() if x)
            for v in value
        )
    return str(value)


def _texts(user: User) -> dict[str, str]:
    """The texts in ``user``'s saved language (English unless it is French)."""
    return TEXTS["fr" if (user.language or "").lower().startswith("fr") else "en"]


def _current_transaction(session: Session) -> Any:
    # Remember the (possibly nested) transaction: a savepoint rolled back later takes its mails with it.
    return session.get_nested_transaction() or session.get_transaction()


def _queue(
    contact: Contact,
    user: User | None,
    verb: str,
    changes: Mapping[str, tuple[Any, Any]],
    source: str,
    skip: frozenset[int] = frozenset(),
) -> None:
    # An import would mail every owner once per row; imports are reported by their own summary.
    if not contact.notify_owners or source == "import":
        return
    recipients = [
        owner
        for owner in contact.owners
        if owner.active and (user is None or owner.id != user.id) and owner.id not in skip
    ]
    if not recipients:
        return
    pending = db.session.info.setdefault(_PENDING, [])
    transaction = _current_transaction(db.session())
    for owner in recipients:
        texts = _texts(owner)
        who = user.display_name if user else texts["system"]
        fields = {"name": contact.display_name, "number": contact.number, "who": who, "verb": texts[verb]}
        lines = [texts["intro"].format(**fields), ""]
        lines += [f"- {field}: {_show(old)} -> {_show(new)}" for field, (old, new) in changes.items()]
        pending.append((transaction, owner.email, texts["subject"].format(**fields), "\n".join(lines)))


def _contact_link(contact_id: int) -> str | None:
    """The contact's page: under ``CRM_PUBLIC_URL``, else the address of the current request, else none."""
    path = current_app.url_map.bind("localhost").build("contact_pages.show", {"contact_id": contact_id})
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return str(base).rstrip("/") + path
    if has_request_context():
        return request.host_url.rstrip("/") + request.script_root + path
    return None


def _queue_assignment(
    session: Session, transaction: Any, contact: Contact, owner: User, user: User | None
) -> None:
    texts = _texts(owner)
    fields = {
        "name": contact.display_name,
        "number": contact.number,
        "who": user.display_name if user else texts["system"],
    }
    lines = [texts["assigned_intro"].format(**fields)]
    link = _contact_link(contact.id)
    if link:
        lines += ["", texts["assigned_link"].format(link=link)]
    session.info.setdefault(_PENDING, []).append(
        (transaction, owner.email, texts["assigned_subject"].format(**fields), "\n".join(lines))
    )


def _assignment_on() -> bool:
    # Listeners are global: a session outside any app, or of an app without this plugin, is left alone.
    return has_app_context() and bool(current_app.extensions.get(_ENABLED))


def _added_owners(changes: Mapping[str, tuple[Any, Any]], user: User | None) -> frozenset[int]:
    old, new = changes.get("owners") or ((), ())
    return frozenset(new or ()) - frozenset(old or ()) - {user.id if user else None}


@hookimpl
def contact_updated(
    contact: Contact, changes: Mapping[str, tuple[Any, Any]], user: User | None, source: str
) -> None:
    added = _added_owners(changes, user) if source != "import" and _assignment_on() else frozenset()
    # A responsible added by this change gets the assignment notice, not the change notice as well.
    _queue(contact, user, "updated", changes, source, skip=added)
    if added:
        session = db.session()
        transaction = _current_transaction(session)
        for owner in contact.owners:
            if owner.id in added and owner.active:
                _queue_assignment(session, transaction, contact, owner, user)


@hookimpl
def contact_deleted(contact: Contact, user: User | None, source: str) -> None:
    _queue(contact, user, "deleted", {}, source)


def _watch_creations(state: ORMExecuteState) -> None:
    """Note the owners (other than the creator) of contacts created outside imports, from the "create"
    history rows ``insert_contacts`` writes: no read, and nothing at all for the usual creation whose
    only owner is its creator."""
    if not state.is_insert or getattr(state.statement.table, "name", None) != _HISTORY_TABLE:
        return
    rows = state.parameters
    if not rows or not _assignment_on():
        return
    found = [
        (row["contact_id"], owner, row.get("user_id"))
        for row in ([rows] if isinstance(rows, dict) else rows)
        if row.get("action") == "create"
        and row.get("source") != "import"
        and isinstance(row.get("new"), dict)
        for owner in row["new"].get("owners") or ()
        if owner != row.get("user_id")
    ]
    if found:
        session = state.session
        transaction = _current_transaction(session)
        session.info.setdefault(_ASSIGNED, []).extend((transaction, *item) for item in found)


def _resolve_assignments(session: Session) -> None:
    """Before the commit: turn the creations' assignments into mails (two reads, only when there are some)."""
    assigned = session.info.pop(_ASSIGNED, None)
    if not assigned:
        return
    contact_ids = {item[1] for item in assigned}
    user_ids = {item[2] for item in assigned} | {item[3] for item in assigned if item[3] is not None}
    contacts = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(contact_ids)))}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    for transaction, contact_id, owner_id, user_id in assigned:
        contact, owner = contacts.get(contact_id), users.get(owner_id)
        if contact is None or contact.deleted_at is not None or owner is None or not owner.active:
            continue
        _queue_assignment(session, transaction, contact, owner, users.get(user_id) if user_id else None)


def _send_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    from crmcore.mail import MailError, build_message, send

    for _transaction, address, subject, body in pending:
        try:
            send(build_message([address], subject, body))
        except MailError as exc:
            log.warning("could not notify %s: %s", address, exc)


def _within(transaction: Any, ended: Any) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def _forget_rolled_back(session: Session, previous_transaction: Any) -> None:
    """A transaction or savepoint was rolled back: drop the mails its changes queued."""
    for key in (_PENDING, _ASSIGNED):
        pending = session.info.get(key)
        if pending:
            pending[:] = [item for item in pending if not _within(item[0], previous_transaction)]


@hookimpl
def crm_app_ready(app: Any) -> None:
    app.extensions[_ENABLED] = bool(app.config.get("NOTIFY_ASSIGNMENT", True))
    # Listeners on the Session class are global: register them once per process.
    if not event.contains(Session, "after_commit", _send_pending):
        event.listen(Session, "after_commit", _send_pending)
        event.listen(Session, "after_soft_rollback", _forget_rolled_back)
    if not event.contains(Session, "do_orm_execute", _watch_creations):
        event.listen(Session, "do_orm_execute", _watch_creations)
        event.listen(Session, "before_commit", _resolve_assignments)
