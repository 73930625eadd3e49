"""Import runs: a file waiting in the import folder, its state file, and the one function importing it.

The import wizard (:mod:`crmcore.web.imports`) and ``crm import --queue`` keep the file to import in the
import folder (``CRM_IMPORT_FOLDER``, default ``<instance>/imports``) as ``<token>.upload``, beside
``<token>.json``: who asked, the settings, and the run (its state, progress and report). :func:`execute`
imports the file of a token and rewrites the state file after each chunk; :func:`start` runs it

* within the caller (the wizard, for a small file);
* on the job queue when one is configured (``CRM_CELERY_BROKER_URL``): the ``crm.run_import`` task
  (:mod:`crmcore.jobs`) calls :func:`run_queued` in a worker. The job carries the token and the
  absolute path of the folder, so a worker on the same machine (or seeing the same path) finds the
  file whatever its working directory or instance folder;
* otherwise in a background thread of the web process.

States of a run: ``queued`` (waiting for a worker), ``running`` (``done`` records read, ``bytes`` read
of ``size``, ``counts``), ``done`` (``report``), ``failed`` (``error`` in English, ``error_code`` for
the pages; the chunks committed before the failure stay: ``done`` and ``counts`` say how many, and
``batch`` is the import batch to revert them).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from crmcore.errors import CrmError, ValidationError
from crmcore.extensions import db
from crmcore.interchange import ImportReport, importer
from crmcore.models import User

log = logging.getLogger("crmcore.import.runs")

TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
#: The files of a token untouched for this long are deleted by :func:`sweep`.
MAX_AGE = 24 * 3600
#: Runs whose state is not final yet.
ACTIVE = ("queued", "running")
#: Background runs of this process (token -> thread); tests join them.
RUNNING: dict[str, threading.Thread] = {}


class QueueUnavailable(CrmError):
    """The job queue refused the job (broker down): nothing was started."""

    status = 503


# -- the import folder -------------------------------------------------------------------------------


def folder() -> Path:
    path = Path(current_app.config.get("IMPORT_FOLDER") or os.path.join(current_app.instance_path, "imports"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_token() -> str:
    return secrets.token_urlsafe(24)


def paths(token: str, base: Path | None = None) -> tuple[Path, Path]:
    """The uploaded file and the state file of ``token`` (in ``base``, default :func:`folder`)."""
    base = base or folder()
    return base / f"{token}.upload", base / f"{token}.json"


def save_state(token: str, state: dict[str, Any], base: Path | None = None) -> None:
    """Write the state file at once (readers in other processes never see half of it)."""
    _upload, path = paths(token, base)
    temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
    temporary.write_text(json.dumps(state, ensure_ascii=False))
    os.replace(temporary, path)


def read_state(token: str, base: Path | None = None) -> dict[str, Any] | None:
    _upload, path = paths(token, base)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def discard(token: str, base: Path | None = None) -> None:
    """Delete every file of ``token``."""
    for path in (base or folder()).glob(f"{token}.*"):
        path.unlink(missing_ok=True)


def sweep(now: float | None = None) -> int:
    """Delete the files of the tokens none of whose files changed for a day (a run in progress rewrites
    its state file after each chunk, so it is kept). Returns how many files were deleted."""
    limit = (now or time.time()) - MAX_AGE
    tokens: dict[str, list[tuple[Path, float]]] = {}
    for path in folder().iterdir():
        try:
            changed = path.stat().st_mtime
        except OSError:
            continue
        tokens.setdefault(path.name.split(".", 1)[0], []).append((path, changed))
    removed = 0
    for token, files in tokens.items():
        if token in RUNNING or max(changed for _path, changed in files) >= limit:
            continue
        for path, _changed in files:
            try:
                path.unlink()
                removed += 1
            except OSError:
                continue
    return removed


# -- settings and progress ---------------------------------------------------------------------------


def new_state(
    token: str,
    user_id: int | None,
    file_name: str | None,
    size: int,
    settings: dict[str, Any],
    source: str,
) -> dict[str, Any]:
    """The state of a file just put in the folder (no run yet)."""
    return {
        "token": token,
        "user_id": user_id,
        "file_name": (file_name or "")[:255],
        "size": size,
        "uploaded_at": _now(),
        "source": source,
        "settings": {"mode": "create", "match": "email", "dry_run": True, "map": {}, **settings},
        "run": None,
    }


def overrides(state: dict[str, Any]) -> list[str]:
    """The column overrides: the wizard's changed selects (``@N=field``), then ``crm import --map``'s."""
    settings = state["settings"]
    chosen = [f"@{int(index) + 1}={field}" for index, field in sorted(settings["map"].items())]
    return chosen + list(settings.get("overrides") or [])


def source_options(state: dict[str, Any]) -> dict[str, Any]:
    """How to open the file of ``state`` (the keyword arguments of :class:`importer.Source`)."""
    settings = state["settings"]
    return {
        "file_name": state["file_name"] or None,
        "format": settings.get("format") or None,
        "encoding": settings.get("encoding") or None,
        "delimiter": settings.get("delimiter") or None,
        "overrides": overrides(state),
        "size": state["size"],
    }


def counts(report: ImportReport) -> dict[str, int]:
    return {
        "created": report.created,
        "updated": report.updated,
        "skipped": report.skipped,
        "rejected": report.rejected_total,
    }


def status(state: dict[str, Any]) -> dict[str, Any]:
    """``{state, done, percent, counts}`` of the run of ``state`` (what the wizard's page polls)."""
    run = state.get("run") or {}
    size = run.get("size") or 0
    percent = (
        100
        if run.get("state") in ("done", "failed")
        else int(100 * run.get("bytes", 0) / size)
        if size
        else 0
    )
    return {
        "state": run.get("state", "pending"),
        "done": run.get("done", 0),
        "percent": min(percent, 100),
        "counts": run.get("counts") or {"created": 0, "updated": 0, "skipped": 0, "rejected": 0},
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


# -- running -----------------------------------------------------------------------------------------


def queue_configured() -> bool:
    """Whether imports go to the job queue: a broker is configured (``CRM_CELERY_BROKER_URL``)."""
    from crmcore.jobs import is_eager

    return not is_eager()


def start(token: str, state: dict[str, Any], user: User | None, inline: bool = False) -> str:
    """Run the import of ``token``: within the caller when ``inline``, else on the job queue when one is
    configured, else in a background thread. Returns where: ``request``, ``worker`` or ``thread``.

    Raises :class:`QueueUnavailable` when the broker refuses the job; the state is then left as it was.
    """
    runner = "request" if inline else "worker" if queue_configured() else "thread"
    previous = state.get("run")
    state["run"] = {
        "state": "queued" if runner == "worker" else "running",
        "runner": runner,
        "dry_run": bool(state["settings"]["dry_run"]),
        "done": 0,
        "bytes": 0,
        "size": state["size"],
        "queued_at": _now(),
        "started_at": None,
        "report": None,
        "error": None,
    }
    save_state(token, state)
    if runner == "request":
        execute(token, user)
    elif runner == "thread":
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        thread = threading.Thread(
            target=_background, args=(app, token, state["user_id"]), name=f"import-{token[:8]}", daemon=True
        )
        RUNNING[token] = thread
        thread.start()
    else:
        try:
            enqueue(token)
        except QueueUnavailable:
            state["run"] = previous
            save_state(token, state)
            raise
    return runner


def enqueue(token: str) -> None:
    """Hand the run of ``token`` (its state saved as ``queued``) to the job queue; the job id is the token."""
    from crmcore.jobs import IMPORT_TASK, celery_app

    task = celery_app().tasks[IMPORT_TASK]
    try:
        task.apply_async((token, str(folder().resolve())), task_id=token)
    except Exception as exc:  # broker down
        log.warning("could not queue import %s: %s", token, exc)
        raise QueueUnavailable(f"the job queue is unreachable: {exc}") from None


def _background(app: Flask, token: str, user_id: int | None) -> None:
    try:
        with app.app_context():
            user = db.session.get(User, user_id) if user_id is not None else None
            execute(token, user)
    finally:
        RUNNING.pop(token, None)


def run_queued(token: str, base: str) -> str:
    """The job of ``crm.run_import`` (in a worker): run the queued import of ``token`` found in the
    folder ``base``, once, as the user who asked for it. Returns the final state (or why it did not run)."""
    if not TOKEN.match(token or ""):
        log.error("import job %r: not a token", token)
        return "refused"
    where = Path(base)
    state = read_state(token, where)
    if state is None or not state.get("run"):
        log.error(
            "import job %s: no state file in %s (the worker must see the import folder of the web server: "
            "same machine, or the same path)",
            token,
            where,
        )
        return "missing"
    if not _claim(token, where):
        log.warning("import job %s was already taken: not run twice", token)
        return "taken"
    run = state["run"]
    if run.get("state") != "queued":
        log.warning("import job %s is %s, not queued: not run", token, run.get("state"))
        return str(run.get("state"))
    user = None
    if state.get("user_id") is not None:
        user = db.session.get(User, state["user_id"])
        if user is None or not user.active:
            run.update(
                state="failed",
                error="the user who started the import no longer exists or was deactivated",
                error_code="user_gone",
                finished_at=_now(),
            )
            save_state(token, state, where)
            return "failed"
    return execute(token, user, where)


def _claim(token: str, base: Path) -> bool:
    """Take the run of ``token`` for this process; False when another one took it (a job delivered twice)."""
    try:
        os.close(os.open(base / f"{token}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


def execute(token: str, user: User | None, base: Path | None = None) -> str:
    """Run the import of ``token`` (in the request, a thread or a worker), writing progress and report to
    its state file. Returns the final state, ``done`` or ``failed``."""
    state = read_state(token, base)
    if state is None or not state.get("run"):
        raise CrmError(f"no import {token} to run")
    run = state["run"]
    settings = state["settings"]
    upload_path, _state_path = paths(token, base)
    run.update(state="running", started_at=_now())
    save_state(token, state, base)

    def progress(done: int, report: ImportReport, source: importer.Source) -> None:
        # Called after each chunk is committed: what a failure leaves behind.
        run.update(done=done, bytes=source.bytes_read, counts=counts(report))
        if not run["dry_run"]:
            run["batch"] = report.batch
        save_state(token, state, base)

    try:
        if not upload_path.exists():
            run.update(
                state="failed",
                error="the uploaded file is no longer in the import folder",
                error_code="file_missing",
            )
            return "failed"
        options = importer.ImportOptions(
            mode=settings["mode"],
            match=settings["match"],
            dry_run=bool(run["dry_run"]),
            file_name=state["file_name"] or None,
            source=state.get("source") or "ui",
        )
        with open(upload_path, "rb") as stream:
            report = importer.import_file(stream, user, options, progress, **source_options(state))
        run.update(
            state="done",
            report=report.to_dict(),
            counts=counts(report),
            batch=report.batch,
            format=options.format,
        )
    except ValidationError as exc:
        run.update(state="failed", error="; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items()))
    except CrmError as exc:
        run.update(state="failed", error=exc.message)
    except Exception as exc:  # never leave the page waiting for ever
        log.exception("import %s failed", token)
        detail = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}".rstrip(": ")
        run.update(
            state="failed", error=f"unexpected error: {detail}", error_code="unexpected", error_detail=detail
        )
    except BaseException:  # stopped (Ctrl-C, shutdown): say so if there is time
        run.update(state="failed", error="the import was interrupted", error_code="interrupted")
        raise
    finally:
        run["finished_at"] = _now()
        if not run["dry_run"]:
            upload_path.unlink(missing_ok=True)
        save_state(token, state, base)
    return str(run["state"])
