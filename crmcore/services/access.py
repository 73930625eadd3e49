"""Access rules, in one place: a query filter for lists and a check for single contacts.

* ``private``: visible only to its responsibles (owners) and admins;
* ``public_read``: readable by every user, writable by its responsibles and admins;
* ``public_write``: readable and writable by every user.

``user`` None is the system (CLI, jobs, tests of the open API): everything is allowed.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import ColumnElement, exists, or_, select, true

from crmcore.errors import Forbidden, NotFound
from crmcore.models import Contact, User, contact_owners

Mode = Literal["read", "write"]


def visible_filter(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause keeping the contacts ``user`` may read."""
    if user is None or user.is_admin:
        return true()
    owned = exists(
        select(contact_owners.c.contact_id).where(
            contact_owners.c.contact_id == Contact.id, contact_owners.c.user_id == user.id
        )
    )
    return or_(Contact.visibility != "private", owned)


def is_visible(contact_id: int, user: User | None) -> bool:
    """Whether ``contact_id`` exists (deleted or not) and ``user`` may see it: one indexed query."""
    from crmcore.extensions import db

    if user is None or user.is_admin:
        return True
    found = db.session.scalar(select(Contact.id).where(Contact.id == contact_id, visible_filter(user)))
    return found is not None


def is_owner(contact: Contact, user: User) -> bool:
    return any(owner.id == user.id for owner in contact.owners)


def can(contact: Contact, user: User | None, mode: Mode) -> bool:
    if user is None or user.is_admin:
        return True
    if mode == "read" and contact.visibility != "private":
        return True
    if mode == "write" and contact.visibility == "public_write":
        return True
    return is_owner(contact, user)


def check(contact: Contact, user: User | None, mode: Mode) -> None:
    """Raise NotFound when ``user`` may not even see ``contact``, Forbidden when they may only read it."""
    if can(contact, user, mode):
        return
    if mode == "write" and can(contact, user, "read"):
        raise Forbidden(f"you may read contact {contact.number} but not change it")
    raise NotFound(f"contact {contact.id} not found")
