"""Built-in plugin: "notify responsibles on change" emails the contact's owners after each change.

Mails leave only after the transaction commits (a rolled-back change notifies nobody), and a mail
failure is logged, never turned into a failed save.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from crmcore.plugin_api import Contact, User, db, hookimpl

log = logging.getLogger("crmcore.notify")
_PENDING = "crm_pending_notifications"

TEXTS = {
    "en": {
        "subject": "{name} ({number}) was {verb} by {who}",
        "updated": "changed",
        "deleted": "deleted",
        "intro": "{who} {verb} the contact {name} ({number}):",
        "system": "the system",
    },
    "fr": {
        "subject": "{name} ({number}) a été {verb} par {who}",
        "updated": "modifié",
        "deleted": "supprimé",
        "intro": "{who} a {verb} le contact {name} ({number}) :",
        "system": "le système",
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


def _queue(
    contact: Contact, user: User | None, verb: str, changes: Mapping[str, tuple[Any, Any]], source: str
) -> None:
    # An import would mail every owner once per row; imports are reported by their own summary.
    if not contact.notify_owners or source == "import":
        return
    recipients = [owner for owner in contact.owners if owner.active and (user is None or owner.id != user.id)]
    if not recipients:
        return
    pending = db.session.info.setdefault(_PENDING, [])
    # Remember the (possibly nested) transaction: a savepoint rolled back later takes its mails with it.
    session = db.session()
    transaction = session.get_nested_transaction() or session.get_transaction()
    for owner in recipients:
        texts = TEXTS["fr" if owner.language == "fr" else "en"]
        who = user.display_name if user else texts["system"]
        fields = {"name": contact.display_name, "number": contact.number, "who": who, "verb": texts[verb]}
        lines = [texts["intro"].format(**fields), ""]
        lines += [f"- {field}: {_show(old)} -> {_show(new)}" for field, (old, new) in changes.items()]
        pending.append((transaction, owner.email, texts["subject"].format(**fields), "\n".join(lines)))


@hookimpl
def contact_updated(
    contact: Contact, changes: Mapping[str, tuple[Any, Any]], user: User | None, source: str
) -> None:
    _queue(contact, user, "updated", changes, source)


@hookimpl
def contact_deleted(contact: Contact, user: User | None, source: str) -> None:
    _queue(contact, user, "deleted", {}, source)


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
    # Listeners on the Session class are global: register them once per process.
    if not event.contains(Session, "after_commit", _send_pending):
        event.listen(Session, "after_commit", _send_pending)
        event.listen(Session, "after_soft_rollback", _forget_rolled_back)
