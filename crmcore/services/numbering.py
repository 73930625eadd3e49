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
    statement = (
        update(NumberSequence)
        .where(NumberSequence.name == name)
        .values(value=NumberSequence.value + 1)
        .returning(NumberSequence.value)
    )
    value = db.session.execute(statement).scalar()
    if value is not None:
        return value
    try:
        with db.session.begin_nested():
            db.session.execute(insert(NumberSequence).values(name=name, value=1))
        return 1
    except IntegrityError:  # created concurrently: increment theirs
        return db.session.execute(statement).scalar_one()


def next_contact_number() -> str:
    return f"C-{next_value('contact'):06d}"


def peek(name: str) -> int:
    return db.session.scalar(select(NumberSequence.value).where(NumberSequence.name == name)) or 0
