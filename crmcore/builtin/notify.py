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


def _queue(contact: Contact, user: User | None, verb: str, changes: Mapping[str, tuple[Any, Any]]) -> None:
    if not contact.notify_owners:
        return
    recipients = [owner for owner in contact.owners if owner.active and (user is None or owner.id != user.id)]
    if not recipients:
        return
    pending = db.session.info.setdefault(_PENDING, [])
    for owner in recipients:
        texts = TEXTS["fr" if owner.language == "fr" else "en"]
        who = user.display_name if user else texts["system"]
        fields = {"name": contact.display_name, "number": contact.number, "who": who, "verb": texts[verb]}
        lines = [texts["intro"].format(**fields), ""]
        lines += [f"- {field}: {_show(old)} -> {_show(new)}" for field, (old, new) in changes.items()]
        pending.append((owner.email, texts["subject"].format(**fields), "\n".join(lines)))


@hookimpl
def contact_updated(contact: Contact, changes: Mapping[str, tuple[Any, Any]], user: User | None) -> None:
    _queue(contact, user, "updated", changes)


@hookimpl
def contact_deleted(contact: Contact, user: User | None) -> None:
    _queue(contact, user, "deleted", {})


def _send_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    from crmcore.mail import MailError, build_message, send

    for address, subject, body in pending:
        try:
            send(build_message([address], subject, body))
        except MailError as exc:
            log.warning("could not notify %s: %s", address, exc)


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


@hookimpl
def crm_app_ready(app: Any) -> None:
    # Listeners on the Session class are global: register them once per process.
    if not event.contains(Session, "after_commit", _send_pending):
        event.listen(Session, "after_commit", _send_pending)
        event.listen(Session, "after_rollback", _forget_pending)
