"""Mass actions on a selection of contacts: each contact goes through the usual service, alone.

Access is checked per contact by those services; a contact the user may not change is reported
as refused (with the reason) and the others are still changed. The whole selection is one
transaction with a savepoint per contact, so a refusal never undoes the changes made to the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from crmcore.errors import CrmError, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, User
from crmcore.services import contacts as svc
from crmcore.services.tags import tag_key
from crmcore.services.transactions import savepoint, transaction

log = logging.getLogger("crmcore.bulk")
ACTIONS = ("add_tag", "remove_tag", "assign", "status", "delete")
MAX_IDS = 500


@dataclass
class Refusal:
    contact_id: int
    label: str
    reason: str


@dataclass
class BulkResult:
    action: str
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def _check(action: str, ids: list[int], params: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    if action not in ACTIONS:
        errors["action"] = [f"must be one of: {', '.join(ACTIONS)}"]
    if not ids:
        errors["ids"] = ["select at least one contact"]
    elif len(ids) > MAX_IDS:
        errors["ids"] = [f"at most {MAX_IDS} contacts at once"]
    clean: dict[str, Any] = {}
    if action in ("add_tag", "remove_tag"):
        tag = str(params.get("tag") or "").strip()
        if not tag:
            errors["tag"] = ["is required"]
        elif len(tag) > 80:
            errors["tag"] = ["must be at most 80 characters"]
        clean["tag"] = tag
    elif action == "assign":
        owner = params.get("owner")
        if not isinstance(owner, int) or db.session.get(User, owner) is None:
            errors["owner"] = ["choose a user"]
        clean["owner"] = owner
    elif action == "status":
        status = params.get("status")
        if status not in svc.STATUSES:
            errors["status"] = [f"must be one of: {', '.join(svc.STATUSES)}"]
        clean["status"] = status
    if errors:
        raise ValidationError(errors)
    return clean


def apply(
    action: str, ids: Iterable[int], user: User | None = None, source: str = "ui", **params: Any
) -> BulkResult:
    """Apply ``action`` (add_tag/remove_tag ``tag=``, assign ``owner=``, status ``status=``, delete) to ``ids``."""
    wanted = list(dict.fromkeys(i for i in ids if isinstance(i, int) and not isinstance(i, bool)))
    clean = _check(action, wanted, params)
    result = BulkResult(action)
    labels = {
        row.id: row.display_name
        for row in db.session.execute(select(Contact.id, Contact.display_name).where(Contact.id.in_(wanted)))
    }
    # One transaction, one savepoint per contact: a refused contact undoes only its own change.
    with transaction():
        for contact_id in wanted:
            try:
                with savepoint():
                    changed = _apply_one(action, contact_id, user, source, clean)
            except CrmError as exc:
                # A contact the user may not see is named by its id only: its name is not theirs to read.
                label = (
                    f"#{contact_id}"
                    if isinstance(exc, NotFound)
                    else labels.get(contact_id, f"#{contact_id}")
                )
                result.refused.append(Refusal(contact_id, label, exc.message))
                continue
            except Exception:  # a plugin hook that broke on this contact: the others still go through
                log.exception("mass action %s failed on contact %s", action, contact_id)
                result.refused.append(
                    Refusal(contact_id, labels.get(contact_id, f"#{contact_id}"), "unexpected error (logged)")
                )
                continue
            (result.changed if changed else result.unchanged).append(contact_id)
    return result


def _apply_one(action: str, contact_id: int, user: User | None, source: str, clean: dict[str, Any]) -> bool:
    contact = svc.get_contact(contact_id, user, "write")
    version = contact.version
    if action == "delete":
        svc.delete_contact(contact_id, user, source)
        return True
    if action == "status":
        svc.set_status(contact, status=clean["status"], user=user, source=source)
    elif action == "assign":
        svc.update_contact(contact_id, {"owners": [clean["owner"]]}, user, source)
    else:
        names = [tag.name for tag in contact.tags]
        key = tag_key(clean["tag"])
        if action == "add_tag":
            if key in {tag.key for tag in contact.tags}:
                return False
            names.append(clean["tag"])
        else:
            names = [tag.name for tag in contact.tags if tag.key != key]
        svc.update_contact(contact_id, {"tags": names}, user, source)
    return contact.version != version
