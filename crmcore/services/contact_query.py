"""Listing and searching contacts: filters, prefix search, keyset pagination, access filter.

A page costs a constant number of queries (one for the rows, one per eager-loaded collection)
whatever its size, and never counts the whole table.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, and_, exists, func, intersect, or_, select

from crmcore.errors import ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, ContactEmail, Tag, User, contact_owners, contact_tags
from crmcore.services import access, search_index
from crmcore.services.contacts import EAGER, KINDS, STATUSES
from crmcore.services.fields import all_fields, clean_value
from crmcore.services.tags import tag_key

SORTS: dict[str, Any] = {
    "name": Contact.sort_key,
    "number": Contact.number,
    "created_at": Contact.created_at,
    "updated_at": Contact.updated_at,
}


@dataclass
class Page:
    items: list[Contact]
    next_cursor: str | None
    limit: int


def _encode_cursor(value: Any, contact_id: int) -> str:
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = json.dumps([value, contact_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort_field: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, contact_id = json.loads(raw)
        if not isinstance(contact_id, int):
            raise ValueError
        if sort_field in ("created_at", "updated_at"):
            value = dt.datetime.fromisoformat(value)
        elif not isinstance(value, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise ValidationError({"cursor": ["is not a cursor returned by this API"]}) from None
    return value, contact_id


def search_condition(q: str, walk: bool = False) -> ColumnElement[bool] | None:
    """Every word of ``q`` must match the contact (:func:`crmcore.services.search_index.term_matches`).

    ``walk``: write it so that SQLite walks the index of the sort order and keeps the matching contacts
    (see :func:`_walk_sort_index`) instead of looking every match up and sorting them all.
    """
    words = [search_index.term_matches(term) for term in search_index.query_terms(q)]
    if not words:
        return None
    # Several words: their matches are intersected first, so only contacts matching all are looked up.
    matching = words[0] if len(words) == 1 else intersect(*words)
    # "id + 0" cannot be looked up by the primary key, which leaves the sort order's index to SQLite.
    return (Contact.id + 0 if walk else Contact.id).in_(matching)


#: Fewer matches than this for a word: look them up and sort them rather than walk the sort index.
WALK_MIN_MATCHES = 1000


def _walk_sort_index(q: str | None) -> bool:
    """True when every word of ``q`` matches a large share of the contacts, on SQLite.

    SQLite otherwise fetches every match by id and sorts them all for one page ("mar" among 100,000
    contacts: 15,000 rows, 16 ms); walking the sort order's index finds a page of common matches after a
    few hundred rows (6 ms) but would read the whole index for a rare word, hence this probe, which reads
    at most a tenth of the table's size of index entries per word. PostgreSQL's planner decides by itself.
    """
    if not q or db.engine.dialect.name != "sqlite":
        return False
    terms = search_index.query_terms(q)
    if not terms:
        return False
    threshold = max(WALK_MIN_MATCHES, (db.session.scalar(select(func.max(Contact.id))) or 0) // 10)
    for term in terms:
        # Name words alone decide: they are the common matches ("mar"); the other kinds only add some.
        sample = search_index.name_matches(term).limit(threshold).subquery()
        if db.session.scalar(select(func.count()).select_from(sample)) < threshold:
            return False
    return True


def list_contacts(
    user: User | None = None,
    q: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    owner: int | None = None,
    updated_since: dt.datetime | None = None,
    custom: Mapping[str, Any] | None = None,
    organization_id: int | None = None,
    deleted: bool = False,
    sort: str = "name",
    limit: int | None = None,
    cursor: str | None = None,
    ids: list[int] | None = None,
    eager: bool = True,
) -> Page:
    """One page of the contacts ``user`` may see, filtered and sorted, with the cursor of the next page.

    ``eager=False`` leaves their emails, phones, addresses, tags and owners unloaded (for
    :func:`~crmcore.services.serialize.contacts_to_dicts`, which reads them more cheaply).
    """
    config = current_app.config
    limit = limit or config["PAGE_SIZE"]
    if not 1 <= limit <= config["MAX_PAGE_SIZE"]:
        raise ValidationError({"limit": [f"must be between 1 and {config['MAX_PAGE_SIZE']}"]})
    descending = sort.startswith("-")
    sort_field = sort.lstrip("-")
    if sort_field not in SORTS:
        raise ValidationError({"sort": [f"must be one of: {', '.join(SORTS)} (prefix - for descending)"]})
    column = SORTS[sort_field]

    query = select(Contact).where(access.visible_filter(user))
    query = query.where(Contact.deleted_at.is_not(None) if deleted else Contact.deleted_at.is_(None))
    walk = _walk_sort_index(q)
    for condition in _filters(q, kind, status, tag, owner, updated_since, custom, organization_id, ids, walk):
        query = query.where(condition)
    if cursor:
        value, last_id = _decode_cursor(cursor, sort_field)
        if descending:
            query = query.where(or_(column < value, and_(column == value, Contact.id < last_id)))
        else:
            query = query.where(or_(column > value, and_(column == value, Contact.id > last_id)))
    order = (column.desc(), Contact.id.desc()) if descending else (column.asc(), Contact.id.asc())
    options = EAGER if eager else ()
    rows = list(db.session.scalars(query.order_by(*order).limit(limit + 1).options(*options)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode_cursor(getattr(last, column.key), last.id)
    return Page(rows, next_cursor, limit)


def _filters(
    q: str | None,
    kind: str | None,
    status: str | None,
    tag: str | None,
    owner: int | None,
    updated_since: dt.datetime | None,
    custom: Mapping[str, Any] | None,
    organization_id: int | None,
    ids: list[int] | None,
    walk: bool = False,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if q:
        condition = search_condition(q, walk)
        if condition is not None:
            conditions.append(condition)
    if kind:
        if kind not in KINDS:
            raise ValidationError({"kind": [f"must be one of: {', '.join(KINDS)}"]})
        conditions.append(Contact.kind == kind)
    if status:
        if status == "supplier":
            conditions.append(Contact.is_supplier.is_(True))
        elif status in STATUSES:
            conditions.append(Contact.status == status)
        else:
            raise ValidationError({"status": [f"must be one of: {', '.join((*STATUSES, 'supplier'))}"]})
    if tag:
        conditions.append(
            exists(
                select(contact_tags.c.contact_id)
                .join(Tag, Tag.id == contact_tags.c.tag_id)
                .where(contact_tags.c.contact_id == Contact.id, Tag.key == tag_key(tag))
            )
        )
    if owner is not None:
        conditions.append(
            exists(
                select(contact_owners.c.contact_id).where(
                    contact_owners.c.contact_id == Contact.id, contact_owners.c.user_id == owner
                )
            )
        )
    if updated_since is not None:
        conditions.append(Contact.updated_at >= updated_since)
    if organization_id is not None:
        conditions.append(Contact.organization_id == organization_id)
    if ids is not None:
        conditions.append(Contact.id.in_(ids))
    if custom:
        conditions.extend(_custom_filters(custom))
    return conditions


def _custom_filters(custom: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    fields = all_fields()
    conditions: list[ColumnElement[bool]] = []
    for key, raw in custom.items():
        field_def = fields.get(key)
        if field_def is None:
            raise ValidationError({f"custom.{key}": ["no such custom field"]})
        try:
            value = clean_value(field_def, raw)
        except ValueError as exc:
            raise ValidationError({f"custom.{key}": [str(exc)]}) from None
        element = Contact.custom[key]
        if field_def.type == "multi_choice":
            # JSON lists: match contacts whose list holds every requested choice.
            for choice in value:
                conditions.append(element.as_string().contains(json.dumps(choice)))
        elif field_def.type == "boolean":
            conditions.append(element.as_boolean() == value)
        elif field_def.type == "integer":
            conditions.append(element.as_integer() == value)
        else:
            conditions.append(element.as_string() == str(value))
    return conditions


def related_contacts(contact: Contact, user: User | None = None, limit: int = 100) -> list[Contact]:
    """Contacts sharing one of ``contact``'s email domains (public mail domains such as gmail.com excluded)."""
    public = {d.lower() for d in current_app.config["PUBLIC_MAIL_DOMAINS"]}
    domains = sorted({email.domain for email in contact.emails if email.domain not in public})
    if not domains:
        return []
    sharing = select(ContactEmail.contact_id).where(ContactEmail.domain.in_(domains))
    query = (
        select(Contact)
        .where(
            Contact.id.in_(sharing),
            Contact.id != contact.id,
            Contact.deleted_at.is_(None),
            access.visible_filter(user),
        )
        .order_by(Contact.sort_key, Contact.id)
        .limit(limit)
        .options(*EAGER)
    )
    return list(db.session.scalars(query))
