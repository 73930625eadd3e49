"""Generated numbers (``C-000001``): a counter row incremented inside the creating transaction.

On PostgreSQL the UPDATE locks the row until commit, so two creations never get the same number;
a number is consumed only when its transaction commits and is never handed out again.
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from crmcore.extensions import db
from crmcore.models import NumberSequence


def next_value(name: str) -> int:
    return reserve(name, 1)[0]


# Built once: a creation takes a number, and building the statement cost more than running it.
# On the table, not the model: an ORM-enabled UPDATE would also look for objects to synchronise.
_COUNTERS = NumberSequence.__table__
_RESERVE = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == bindparam("counter"))
    .values(value=_COUNTERS.c.value + bindparam("count"))
    .returning(_COUNTERS.c.value)
)


def reserve(name: str, count: int) -> range:
    """``count`` consecutive values of counter ``name``, taken with one statement (bulk creation)."""
    arguments = {"counter": name, "count": count}
    last = db.session.execute(_RESERVE, arguments).scalar()
    if last is None:
        try:
            with db.session.begin_nested():
                db.session.execute(insert(NumberSequence).values(name=name, value=count))
            last = count
        except IntegrityError:  # created concurrently: increment theirs
            last = db.session.execute(_RESERVE, arguments).scalar_one()
    return range(last - count + 1, last + 1)


def contact_number(value: int) -> str:
    return f"C-{value:06d}"


def next_contact_number() -> str:
    return contact_number(next_value("contact"))


def next_contact_numbers(count: int) -> list[str]:
    return [contact_number(value) for value in reserve("contact", count)]


def peek(name: str) -> int:
    return db.session.scalar(select(NumberSequence.value).where(NumberSequence.name == name)) or 0
