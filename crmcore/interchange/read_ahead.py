"""Reading an import ahead in a second process while this one writes.

Reading a file and validating its records (the CSV parser, phone numbers, every field's rules)
costs an import about as much as writing the contacts. With two CPUs or more, a forked copy of this
process does that part, chunk by chunk, and hands each chunk over through a pipe while this process
writes the one before: the import goes about twice as fast.

The copy only reads. It never uses this process's database connections: it leaves them to this
process, untouched, and opens its own when validation needs the database (a plugin's check, an
owner's id). Writes, and everything that depends on them (organizations found or created by name,
contacts matched for an update), stay in this process. The pipe holds about one chunk, so the file
is still read in constant memory; a failure in the copy reaches this process as its exception.

``CRM_IMPORT_READ_AHEAD``: ``auto`` (the default: files of 1 MB or more, CSV or JSON, on a machine
with two CPUs or more), ``on`` (any size) or ``off``. Not used where ``fork`` is not available,
for vCard files (their records carry a function run after the save), for an in-memory SQLite
database (a copy of the process has its own), or in a daemonic process (a Celery worker's).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from flask import Flask, current_app

from crmcore.errors import CrmError
from crmcore.extensions import db

log = logging.getLogger("crmcore.import")

T = TypeVar("T")
MIN_SIZE = 1 << 20
FORMATS = ("csv", "json")

#: The pools of the parent's connections, kept alive in the copy (see :func:`_leave_parent_connections`).
_inherited: list[Any] = []


def wanted(format: str, size: int | None) -> bool:
    """Whether an import of ``format`` of ``size`` bytes (None: unknown) reads ahead."""
    setting = current_app.config.get("IMPORT_READ_AHEAD", "auto")  # checked by config: auto, on, off
    if setting == "off" or format not in FORMATS:
        return False
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return False
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return False
    if setting == "on":
        return True
    return _cpus() >= 2 and size is not None and size >= MIN_SIZE


def iterate(items: Iterator[T]) -> Iterator[T]:
    """The items of ``items``, computed in a forked copy of this process. Items must pickle."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    process = context.Process(
        target=_produce, args=(app, items, sender), name="crm-import-read-ahead", daemon=True
    )
    try:
        process.start()
    except Exception as exc:  # resource limits, a platform refusing fork...
        log.warning("cannot read the file ahead in a second process (%s): reading it here", exc)
        receiver.close()
        sender.close()
        yield from items
        return
    sender.close()
    try:
        while True:
            try:
                kind, payload = receiver.recv()
            except EOFError:
                process.join(5)
                raise CrmError(
                    f"the process reading the file stopped unexpectedly (exit code {process.exitcode})"
                ) from None
            if kind == "error":
                raise payload
            if kind == "end":
                return
            yield payload
    finally:
        receiver.close()
        if process.is_alive():
            process.terminate()
        process.join(5)


def _produce(app: Flask, items: Iterator[Any], sender: Connection) -> None:
    """In the copy: send each item, then "end", or the exception that stopped it."""
    _leave_parent_connections(app)
    try:
        with app.app_context():  # a new context: a session of its own, not the parent's
            for item in items:
                sender.send(("item", item))
        sender.send(("end", None))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent stopped listening: it has its reason
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sender.send(("error", _transportable(exc)))
    finally:
        sender.close()


def _leave_parent_connections(app: Flask) -> None:
    # The copy shares the parent's sockets and SQLite handles. Closing one (even by letting it be
    # garbage-collected: a PostgreSQL driver then says goodbye to the server) would break the parent's.
    # New pools for the copy; the old ones stay referenced until the copy exits without cleanup.
    with app.app_context():
        for engine in db.engines.values():
            _inherited.append(engine.pool)
            engine.dispose(close=False)


def _transportable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # an exception class that cannot be rebuilt from its arguments
        return CrmError(f"{type(exc).__name__}: {exc}")
    return exc


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
