"""Built-in plugin: emails to a contact's owners, after the commit only.

* "Notify responsibles on change" (``notify_owners``): each change emails the contact's owners.
* Assignment notices (``CRM_NOTIFY_ASSIGNMENT``, on by default): a user who becomes an owner of a
  contact, at its creation or when an update adds them, is told once, in their language, with a link
  to the contact. Not the acting user themself, not deactivated users, not for imports (an import
  commits a chunk at a time and has no "finished" event to hang one summary per assignee on).

Mails leave only after the transaction commits (a rolled-back change notifies nobody, a savepoint
rolled back takes its mails with it), and a mail failure is logged, never turned into a failed save.

Creations come through ``contact_created`` like any plugin's (imports call ``contacts_imported``
instead, which this plugin leaves alone).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app, has_app_context, has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import Session

from crmcore.plugin_api import Contact, User, db, hookimpl

log = logging.getLogger("crmcore.notify")
_PENDING = "crm_pending_notifications"
#: Set on each app where this plugin is enabled: whether assignment notices are on.
_ENABLED = "crm_notify_assignment"

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


@hookimpl
def contact_created(contact: Contact, user: User | None, source: str) -> None:
    if source == "import" or not _assignment_on():
        return
    acting = user.id if user else None
    assigned = [owner for owner in contact.owners if owner.id != acting and owner.active]
    if assigned:
        session = db.session()
        transaction = _current_transaction(session)
        for owner in assigned:
            _queue_assignment(session, transaction, contact, owner, user)


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
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [item for item in pending if not _within(item[0], previous_transaction)]


@hookimpl
def crm_app_ready(app: Any) -> None:
    app.extensions[_ENABLED] = bool(app.config.get("NOTIFY_ASSIGNMENT", True))
    # Listeners on the Session class are global: register them once per process.
    if not event.contains(Session, "after_commit", _send_pending):
        event.listen(Session, "after_commit", _send_pending)
        event.listen(Session, "after_soft_rollback", _forget_rolled_back)
