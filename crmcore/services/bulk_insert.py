"""Writing many rows of one table with one statement: the write path of batch creations and imports.

SQLAlchemy's executemany builds each row's parameters through the compiled statement (a dictionary
per row, a type processor call per value): for an import, more time than SQLite takes to store the
rows. On SQLite, :func:`insert_tuples` (and :func:`insert_rows`, for rows given as dictionaries)
converts each column with its type's processor once looked up, then hands plain tuples to the
driver — the values stored are exactly those SQLAlchemy would store.
Other databases keep SQLAlchemy's own path, which batches rows into multi-row INSERTs there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table, insert

from crmcore.extensions import db

_Plan = tuple[str, tuple[tuple[str, Callable[[Any], Any] | None, bool], ...]]
_plans: dict[tuple[int, str, tuple[str, ...]], _Plan] = {}


def insert_rows(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dictionaries with the same keys, column names) into ``table`` in the session's
    transaction. Columns not named get their defaults, as with ``session.execute(insert(table), rows)``."""
    if rows:
        keys = tuple(rows[0])
        values = itemgetter(*keys)  # a tuple of the values, or the value when there is one key
        insert_tuples(
            table, keys, list(map(values, rows)) if len(keys) > 1 else [(row[keys[0]],) for row in rows]
        )


def insert_tuples(table: Table, keys: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> None:
    """:func:`insert_rows` for rows given as tuples of the values of ``keys``, in that order: what
    writers of thousands of rows build (no dictionary per row to make, carry and take apart)."""
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    missing = [
        column for key, column in table.columns.items() if key not in keys and column.default is not None
    ]
    if dialect.name != "sqlite" or any(not column.default.is_scalar for column in missing):
        # SQLAlchemy's path: multi-row INSERTs on other databases; on SQLite, a Python function giving
        # a column's value row by row.
        connection.execute(insert(table), [dict(zip(keys, row, strict=True)) for row in rows])
        return
    if missing:
        # Scalar Python-side defaults are part of the statement SQLAlchemy would send: add them.
        keys += tuple(column.key for column in missing)
        constants = tuple(column.default.arg for column in missing)
        rows = [row + constants for row in rows]
    sql, columns = _plan(table, keys, dialect)
    # Column by column: the loops over rows run in C (zip, map); only values that need a conversion
    # go through Python, and each distinct value of a column of dates or flags once.
    position = {key: index for index, key in enumerate(keys)}
    transposed = list(zip(*rows, strict=True))
    converted = []
    for key, process, memo in columns:
        values = transposed[position[key]]
        converted.append(values if process is None else _convert(process, values, memo))
    connection.exec_driver_sql(sql, list(zip(*converted, strict=True)))


def _convert(process: Callable[[Any], Any], values: Sequence[Any], memo: bool) -> list[Any]:
    # Every value goes through the processor, None included, as SQLAlchemy does.
    if memo:
        try:
            distinct = set(values)
        except TypeError:  # a value that cannot be a key (a list given to a text column...)
            return list(map(process, values))
        if len(distinct) * 4 < len(values):
            table = {value: process(value) for value in distinct}
            return list(map(table.__getitem__, values))
    return list(map(process, values))


def _plan(table: Table, keys: tuple[str, ...], dialect: Any) -> _Plan:
    cache_key = (id(table), dialect.name, keys)
    plan = _plans.get(cache_key)
    if plan is None:
        compiled = insert(table).values({key: None for key in keys}).compile(dialect=dialect)
        order = compiled.positiontup or list(keys)
        columns = []
        for key in order:
            kind = table.columns[key].type
            # JSON documents are not hashable, and 1 and True are equal keys but different documents.
            memo = not isinstance(kind, JSON)
            columns.append((key, kind._cached_bind_processor(dialect), memo))  # noqa: SLF001
        plan = (str(compiled), tuple(columns))
        _plans[cache_key] = plan
    return plan
