"""One transaction per service call; calls made inside another service call join its transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm.exc import StaleDataError

from crmcore.errors import Conflict
from crmcore.extensions import db

_DEPTH = "crm_transaction_depth"


@contextmanager
def transaction() -> Iterator[None]:
    """Commit at the end of the outermost block, roll back everything if anything raises."""
    info = db.session.info
    depth = info.get(_DEPTH, 0)
    info[_DEPTH] = depth + 1
    try:
        yield
        if depth == 0:
            db.session.commit()
    except StaleDataError:
        if depth == 0:
            db.session.rollback()
        raise Conflict("the contact was changed by someone else meanwhile; reload it and try again") from None
    except BaseException:
        if depth == 0:
            db.session.rollback()
        raise
    finally:
        info[_DEPTH] = depth


@contextmanager
def savepoint() -> Iterator[None]:
    """Make a block all-or-nothing inside a larger transaction (one import row, one card)."""
    nested = db.session.begin_nested()
    try:
        yield
    except BaseException:
        nested.rollback()
        raise
    else:
        nested.commit()
