"""Generated numbers (``C-000001``): a counter row incremented inside the creating transaction.

On PostgreSQL the UPDATE locks the row until commit, so two creations never get the same number;
a number is consumed only when its transaction commits and is never handed out again.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from crmcore.extensions import db
from crmcore.models import NumberSequence


def next_value(name: str) -> int:
    return reserve(name, 1)[0]


def reserve(name: str, count: int) -> range:
    """``count`` consecutive values of counter ``name``, taken with one statement (bulk creation)."""
    statement = (
        update(NumberSequence)
        .where(NumberSequence.name == name)
        .values(value=NumberSequence.value + count)
        .returning(NumberSequence.value)
    )
    last = db.session.execute(statement).scalar()
    if last is None:
        try:
            with db.session.begin_nested():
                db.session.execute(insert(NumberSequence).values(name=name, value=count))
            last = count
        except IntegrityError:  # created concurrently: increment theirs
            last = db.session.execute(statement).scalar_one()
    return range(last - count + 1, last + 1)


def contact_number(value: int) -> str:
    return f"C-{value:06d}"


def next_contact_number() -> str:
    return contact_number(next_value("contact"))


def next_contact_numbers(count: int) -> list[str]:
    return [contact_number(value) for value in reserve("contact", count)]


def peek(name: str) -> int:
    return db.session.scalar(select(NumberSequence.value).where(NumberSequence.name == name)) or 0
