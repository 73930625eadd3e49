"""Access rules, in one place: a query filter for lists and a check for single contacts.

* ``private``: visible only to its responsibles and admins;
* ``public_read``: readable by every user, writable by its responsibles and admins;
* ``public_write``: readable and writable by every user.

A contact's responsibles are its owners and the members of its team (``team_id``): a team member may
do whatever an owner may. Leaving the team (or the contact changing team) takes that away at once.

``user`` None is the system (CLI, jobs, tests of the open API): everything is allowed.
"""

from __future__ import annotations

from typing import Literal

from flask import g, has_request_context
from sqlalchemy import ColumnElement, exists, or_, select, true

from crmcore.errors import Forbidden, NotFound
from crmcore.models import Contact, User, contact_owners, team_members, user_id_of

Mode = Literal["read", "write"]


def visible_filter(user: User | None) -> ColumnElement[bool]:
    """A WHERE clause keeping the contacts ``user`` may read."""
    if user is None or user.is_admin:
        return true()
    user_id = user_id_of(user)
    owned = exists(
        select(contact_owners.c.contact_id).where(
            contact_owners.c.contact_id == Contact.id, contact_owners.c.user_id == user_id
        )
    )
    # Not correlated with the contact: the database reads the user's teams once per statement
    # (ix_team_members_user_id), then tests team_id against them; no extra round trip per request.
    in_team = Contact.team_id.in_(select(team_members.c.team_id).where(team_members.c.user_id == user_id))
    return or_(Contact.visibility != "private", owned, in_team)


def is_visible(contact_id: int, user: User | None) -> bool:
    """Whether ``contact_id`` exists (deleted or not) and ``user`` may see it: one indexed query."""
    from crmcore.extensions import db

    if user is None or user.is_admin:
        return True
    found = db.session.scalar(select(Contact.id).where(Contact.id == contact_id, visible_filter(user)))
    return found is not None


def is_owner(contact: Contact, user: User) -> bool:
    user_id = user_id_of(user)
    return any(owner.id == user_id for owner in contact.owners)


def team_ids(user: User) -> frozenset[int]:
    """The teams ``user`` belongs to: one query, then remembered for the rest of the request."""
    from crmcore.extensions import db

    user_id = user_id_of(user)
    cache: dict[int, frozenset[int]] | None = None
    if has_request_context():
        cache = g.setdefault("crm_team_ids", {})
        if user_id in cache:
            return cache[user_id]
    found = frozenset(
        db.session.scalars(select(team_members.c.team_id).where(team_members.c.user_id == user_id))
    )
    if cache is not None:
        cache[user_id] = found
    return found


def forget_team_ids() -> None:
    """Call after changing team memberships inside a request, so access is decided on the new ones."""
    if has_request_context():
        g.pop("crm_team_ids", None)


def is_responsible(contact: Contact, user: User) -> bool:
    """An owner of ``contact``, or a member of its team."""
    if is_owner(contact, user):
        return True
    return contact.team_id is not None and contact.team_id in team_ids(user)


def can(contact: Contact, user: User | None, mode: Mode) -> bool:
    if user is None or user.is_admin:
        return True
    if mode == "read" and contact.visibility != "private":
        return True
    if mode == "write" and contact.visibility == "public_write":
        return True
    return is_responsible(contact, user)


def check(contact: Contact, user: User | None, mode: Mode) -> None:
    """Raise NotFound when ``user`` may not even see ``contact``, Forbidden when they may only read it."""
    if can(contact, user, mode):
        return
    if mode == "write" and can(contact, user, "read"):
        raise Forbidden(f"you may read contact {contact.number} but not change it")
    raise NotFound(f"contact {contact.id} not found")
