"""Writing many rows of one table with one statement: the write path of batch creations and imports.

SQLAlchemy's executemany builds each row's parameters through the compiled statement (a dictionary
per row, a type processor call per value): for an import, more time than SQLite takes to store the
rows. On SQLite, :func:`insert_rows` converts each column with its type's processor once looked up,
then hands plain tuples to the driver — the values stored are exactly those SQLAlchemy would store.
Other databases keep SQLAlchemy's own path, which batches rows into multi-row INSERTs there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, insert

from crmcore.extensions import db

_Plan = tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]
_plans: dict[tuple[int, str, tuple[str, ...]], _Plan] = {}


def insert_rows(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dictionaries with the same keys, column names) into ``table`` in the session's
    transaction. Columns not named get their defaults, as with ``session.execute(insert(table), rows)``."""
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        connection.execute(insert(table), list(rows))
        return
    keys = tuple(rows[0])
    missing = [
        column for key, column in table.columns.items() if key not in keys and column.default is not None
    ]
    if any(not column.default.is_scalar for column in missing):
        # A Python function gives that column's value row by row: SQLAlchemy's path calls it.
        connection.execute(insert(table), list(rows))
        return
    if missing:
        # Scalar Python-side defaults are part of the statement SQLAlchemy would send: add them.
        constants = {column.key: column.default.arg for column in missing}
        keys += tuple(constants)
        rows = [{**row, **constants} for row in rows]
    sql, columns = _plan(table, keys, dialect)
    # Every value goes through its processor, None included, as SQLAlchemy does (JSON stores 'null').
    values = [
        tuple(row[key] if process is None else process(row[key]) for key, process in columns) for row in rows
    ]
    connection.exec_driver_sql(sql, values)


def _plan(table: Table, keys: tuple[str, ...], dialect: Any) -> _Plan:
    cache_key = (id(table), dialect.name, keys)
    plan = _plans.get(cache_key)
    if plan is None:
        compiled = insert(table).values({key: None for key in keys}).compile(dialect=dialect)
        order = compiled.positiontup or list(keys)
        processors = {
            key: table.columns[key].type._cached_bind_processor(dialect)
            for key in keys  # noqa: SLF001
        }
        plan = (str(compiled), tuple((key, processors[key]) for key in order))
        _plans[cache_key] = plan
    return plan
