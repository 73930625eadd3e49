"""Transactions: a savepoint's rows go when the transaction around it is rolled back, on every database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crmcore.extensions import db
from crmcore.models import Tag
from crmcore.services.tags import resolve_tag_ids
from crmcore.services.transactions import savepoint, transaction


def tag_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Tag))


def test_a_released_savepoint_is_undone_with_its_transaction(app):
    with app.app_context():
        with pytest.raises(RuntimeError), transaction():
            tag_count()  # a read first: on SQLite no transaction is open yet
            with savepoint():
                resolve_tag_ids(["kept by the savepoint"])
            assert tag_count() == 1
            raise RuntimeError("the chunk fails after its savepoint")
        assert tag_count() == 0


def test_a_failed_savepoint_keeps_what_came_before_it(app):
    with app.app_context():
        with transaction():
            resolve_tag_ids(["before"])
            with pytest.raises(RuntimeError), savepoint():
                resolve_tag_ids(["inside"])
                raise RuntimeError("this row only")
            with savepoint():
                resolve_tag_ids(["after"])
        assert sorted(db.session.scalars(select(Tag.name))) == ["after", "before"]
