"""insert_rows stores exactly what SQLAlchemy's own executemany would store (services/bulk_insert.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from crmcore.extensions import db
from crmcore.models import ContactEmail, HistoryEntry
from crmcore.services.bulk_insert import insert_rows


def _raw(table, ids):
    """The stored values as the database hands them back, before any type conversion."""
    columns = ", ".join(f'"{c.name}"' for c in table.columns if c.name != "id")
    where = ", ".join(str(i) for i in ids)
    sql = f'select {columns} from {table.name} where "id" in ({where}) order by "id"'
    return [tuple(row) for row in db.session.connection().exec_driver_sql(sql)]


def _ids(table):
    return set(db.session.scalars(select(table.c.id)))


def _both(table, rows):
    """Insert ``rows`` through SQLAlchemy, then through insert_rows; the raw rows of each."""
    before = _ids(table)
    db.session.execute(insert(table), [dict(r) for r in rows])
    by_sqlalchemy = _ids(table) - before
    insert_rows(table, [dict(r) for r in rows])
    by_us = _ids(table) - before - by_sqlalchemy
    return _raw(table, sorted(by_sqlalchemy)), _raw(table, sorted(by_us))


def test_dates_documents_and_nulls_are_stored_alike(app, make_contact):
    contact = make_contact(last_name="Lovelace")
    at = dt.datetime(2026, 12, 1, 22, 5, 7, 123456, tzinfo=dt.UTC)
    rows = [
        {
            "contact_id": contact.id,
            "action": "create",
            "user_id": None,
            "source": "import",
            "at": at,
            "revision": 1,
            "field": None,
            "old": None,
            "new": {"tags": ["a"], "n": 1, "é": True},
        },
        {
            "contact_id": contact.id,
            "action": "update",
            "user_id": None,
            "source": "api",
            "at": at,
            "revision": 2,
            "field": "first_name",
            "old": "Ada",
            "new": 4,
        },
    ] * 3  # the same dates several times: converted once, stored each time
    ours, theirs = _both(HistoryEntry.__table__, rows)
    assert ours == theirs and len(ours) == 6
    entry = db.session.scalars(select(HistoryEntry).order_by(HistoryEntry.id.desc())).first()
    assert entry.new == 4 and entry.old == "Ada" and entry.at == at


def test_scalar_defaults_and_flags_are_filled_in_alike(app, make_contact):
    contact = make_contact(last_name="Hopper")
    rows = [
        {
            "contact_id": contact.id,
            "address": f"g{n}@example.com",
            "address_key": f"g{n}@example.com",
            "domain": "example.com",
            "accepts_email": n % 2 == 0,
        }
        for n in range(10)
    ]  # label, primary and position left to their defaults
    ours, theirs = _both(ContactEmail.__table__, rows)
    assert ours == theirs and len(ours) == 10
    stored = db.session.scalars(select(ContactEmail).where(ContactEmail.address == "g3@example.com")).all()
    assert {(e.label, e.primary, e.accepts_email, e.position) for e in stored} == {
        (ContactEmail.__table__.c.label.default.arg, False, False, 0)
    }


def test_nothing_to_insert_is_fine(app):
    insert_rows(ContactEmail.__table__, [])
    assert db.session.scalar(select(ContactEmail.id)) is None
