"""Reference data that validating a contact reads (custom field definitions, configurable lists), read
from the database once and kept by the application until an administrator changes it.

Changes are seen by every process: the services that write fields and lists also write a new random
stamp in the ``reference_data`` counter row, and a validation compares that one value with the stamp
its copy was read at (a single primary-key read instead of a query per list). A change rolled back
leaves the old stamp, and its copy is never taken for the stored data: stamps are random, not counted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from crmcore.extensions import db
from crmcore.models import LookupValue, NumberSequence
from crmcore.services.text import fold
from crmcore.state import crm_state

if TYPE_CHECKING:
    from crmcore.contributions import FieldDef

STAMP = "reference_data"
_COUNTERS = NumberSequence.__table__
_READ_STAMP = select(_COUNTERS.c.value).where(_COUNTERS.c.name == STAMP)
_WRITE_STAMP = update(_COUNTERS).where(_COUNTERS.c.name == STAMP).values(value=bindparam("stamp"))


@dataclass
class ReferenceData:
    stamp: int
    fields: dict[str, FieldDef]
    #: list name -> {key, folded English label, folded French label -> key}
    names: dict[str, dict[str, str]] = field(default_factory=dict)


def changed() -> None:
    """Say that fields or lists changed (inside the changing transaction): every copy is read again."""
    stamp = secrets.randbits(31)  # the counter column is a 32-bit integer on PostgreSQL
    if db.session.execute(_WRITE_STAMP, {"stamp": stamp}).rowcount:
        return
    try:
        with db.session.begin_nested():
            db.session.execute(insert(_COUNTERS).values(name=STAMP, value=stamp))
    except IntegrityError:  # created concurrently: overwrite theirs
        db.session.execute(_WRITE_STAMP, {"stamp": stamp})


def current() -> ReferenceData:
    """The reference data as stored now (a cached copy when nothing changed since it was read)."""
    from crmcore.services.fields import read_fields

    stamp = db.session.scalar(_READ_STAMP) or 0
    state = crm_state()
    cached: ReferenceData | None = state.reference
    if cached is not None and cached.stamp == stamp:
        return cached
    fresh = ReferenceData(stamp, read_fields(), _read_names())
    state.reference = fresh
    return fresh


def _read_names() -> dict[str, dict[str, str]]:
    names: dict[str, dict[str, str]] = {}
    rows = db.session.scalars(select(LookupValue).order_by(LookupValue.position, LookupValue.id))
    for value in rows:
        known = names.setdefault(value.list, {})
        known[value.key] = value.key
        known.setdefault(fold(value.label_en), value.key)
        known.setdefault(fold(value.label_fr), value.key)
    return names
