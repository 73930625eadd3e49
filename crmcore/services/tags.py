"""Tags: created on the fly, renamed, merged (a merge re-tags every contact)."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import delete, func, insert, select, update

from crmcore.errors import Conflict, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, Tag, User, contact_tags, utcnow
from crmcore.services import history
from crmcore.services.text import fold
from crmcore.services.transactions import transaction


@lru_cache(maxsize=4096)
def tag_key(name: str) -> str:
    return " ".join(fold(name).split())[:80]


def resolve_tags(names: list[str]) -> list[Tag]:
    """The Tag rows for ``names``, creating the missing ones (inside the caller's transaction)."""
    if not names:
        return []
    keys = {tag_key(name): name.strip() for name in names}
    existing = {tag.key: tag for tag in db.session.scalars(select(Tag).where(Tag.key.in_(list(keys))))}
    result = []
    for key, name in keys.items():
        tag = existing.get(key)
        if tag is None:
            tag = Tag(name=name, key=key)
            db.session.add(tag)
            existing[key] = tag
        result.append(tag)
    return result


def resolve_tag_ids(
    names: list[str], known: dict[str, tuple[int, str]] | None = None
) -> dict[str, tuple[int, str]]:
    """``{key: (tag id, stored name)}`` for ``names``, creating the missing tags with one statement.

    The bulk counterpart of :func:`resolve_tags`; ``known`` is a cache shared by successive calls.
    """
    known = {} if known is None else known
    wanted = {}
    for name in names:
        key = tag_key(name)
        if key not in known:
            wanted.setdefault(key, name.strip())
    if wanted:
        for tag_id, key, name in db.session.execute(
            select(Tag.id, Tag.key, Tag.name).where(Tag.key.in_(list(wanted)))
        ):
            known[key] = (tag_id, name)
        missing = [{"key": key, "name": name} for key, name in wanted.items() if key not in known]
        if missing:
            db.session.execute(insert(Tag), missing)
            for tag_id, key, name in db.session.execute(
                select(Tag.id, Tag.key, Tag.name).where(Tag.key.in_([row["key"] for row in missing]))
            ):
                known[key] = (tag_id, name)
    return {tag_key(name): known[tag_key(name)] for name in names}


def list_tags() -> list[tuple[Tag, int]]:
    counts = (
        select(contact_tags.c.tag_id, func.count().label("n"))
        .join(Contact, Contact.id == contact_tags.c.contact_id)
        .where(Contact.deleted_at.is_(None))
        .group_by(contact_tags.c.tag_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Tag, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.tag_id == Tag.id)
        .order_by(Tag.key)
    )
    return [(tag, count) for tag, count in rows]


def get_tag(tag_id: int) -> Tag:
    tag = db.session.get(Tag, tag_id) if isinstance(tag_id, int) else None
    if tag is None:
        raise NotFound(f"tag {tag_id} not found")
    return tag


def _check_name(name: str | None) -> str:
    text = (name or "").strip()
    if not text:
        raise ValidationError({"name": ["is required"]})
    if len(text) > 80:
        raise ValidationError({"name": ["must be at most 80 characters"]})
    return text


def create_tag(name: str) -> Tag:
    text = _check_name(name)
    with transaction():
        if db.session.scalar(select(Tag).where(Tag.key == tag_key(text))):
            raise Conflict(f"tag {text!r} already exists", field="name")
        tag = Tag(name=text, key=tag_key(text))
        db.session.add(tag)
    return tag


def rename_tag(tag_id: int, name: str, user: User | None = None, source: str = "api") -> Tag:
    """Rename a tag: every contact carrying it shows the new name, so each gets a new version."""
    text = _check_name(name)
    with transaction():
        tag = get_tag(tag_id)
        other = db.session.scalar(select(Tag).where(Tag.key == tag_key(text), Tag.id != tag.id))
        if other is not None:
            raise Conflict(
                f"tag {other.name!r} already exists: merge the two tags instead",
                field="name",
                existing_id=other.id,
            )
        if text == tag.name:
            return tag
        old = tag.name
        tag.name, tag.key = text, tag_key(text)
        affected = list(
            db.session.scalars(select(contact_tags.c.contact_id).where(contact_tags.c.tag_id == tag.id))
        )
        db.session.flush()
        _changed(affected, {"tags": ([old], [text])}, user, source)
    return tag


def merge_tags(source_ids: list[int], target_id: int, user: User | None = None, source: str = "api") -> Tag:
    """Re-tag every contact of ``source_ids`` with ``target_id``, then delete the sources."""
    with transaction():
        target = get_tag(target_id)
        sources = [get_tag(i) for i in source_ids if i != target_id]
        if not sources:
            raise ValidationError({"source_ids": ["name at least one tag other than the target"]})
        source_tag_ids = [t.id for t in sources]
        affected = list(
            db.session.scalars(
                select(contact_tags.c.contact_id).where(contact_tags.c.tag_id.in_(source_tag_ids)).distinct()
            )
        )
        already = set(
            db.session.scalars(select(contact_tags.c.contact_id).where(contact_tags.c.tag_id == target.id))
        )
        new_rows = [{"contact_id": cid, "tag_id": target.id} for cid in affected if cid not in already]
        if new_rows:
            db.session.execute(insert(contact_tags), new_rows)
        db.session.execute(delete(contact_tags).where(contact_tags.c.tag_id.in_(source_tag_ids)))
        names = [t.name for t in sources]
        for tag in sources:
            db.session.delete(tag)
        _changed(affected, {"tags": (names, [target.name])}, user, source)
    return target


def _changed(
    contact_ids: list[int], changes: dict[str, tuple[object, object]], user: User | None, source: str
) -> None:
    """Contacts whose tags were changed in bulk: a new version (ETag, If-Match, updated_since) and history."""
    if contact_ids:
        table = Contact.__table__
        db.session.execute(
            update(table)
            .where(table.c.id.in_(contact_ids))
            .values(version=table.c.version + 1, updated_at=utcnow())
        )
        contacts = db.session.scalars(
            select(Contact).where(Contact.id.in_(contact_ids)).execution_options(populate_existing=True)
        )
        for contact in contacts:
            history.record(contact, "update", user, source, changes)
    db.session.flush()
    db.session.expire_all()


def delete_tag(tag_id: int, user: User | None = None, source: str = "api") -> None:
    """Delete a tag; the contacts carrying it lose it (a recorded change of each)."""
    with transaction():
        tag = get_tag(tag_id)
        affected = list(
            db.session.scalars(select(contact_tags.c.contact_id).where(contact_tags.c.tag_id == tag.id))
        )
        db.session.delete(tag)
        _changed(affected, {"tags": ([tag.name], [])}, user, source)
