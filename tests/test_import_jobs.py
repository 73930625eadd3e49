"""Imports on the job queue: the wizard and ``crm import --queue`` hand a file to a worker; its state is
honest (queued, running, done, failed with the reason and what was kept).

In-process tests run the task's code path (``run_queued``, or the task itself, eagerly); the last test
starts a real ``crm worker`` process on Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crmcore.cli import main
from crmcore.extensions import db
from crmcore.interchange import importer, runs
from crmcore.models import Contact
from tests.test_web_imports import Browser, quick_user, text

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _people(count: int, start: int = 0) -> bytes:
    rows = "".join(f"Ada{i},Lovelace{i},ada{i}@example.org\n" for i in range(start, start + count))
    return ("first_name,last_name,email\n" + rows).encode()


def _count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Contact).where(Contact.deleted_at.is_(None)))


@pytest.fixture
def queued(crm_app_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An app whose imports go to the job queue (every file: no inline run); without a broker the
    task runs eagerly, in-process."""
    application = crm_app_factory(IMPORT_FOLDER=str(tmp_path / "imports"), IMPORT_INLINE_SIZE=0)
    monkeypatch.setattr(runs, "queue_configured", lambda: True)
    with application.app_context():
        yield application


@pytest.fixture
def browser(queued: Any) -> Browser:
    return Browser(queued.test_client(), quick_user("boss@example.com", is_admin=True, language="en"))


def _run(browser: Browser, content: bytes, name: str = "people.csv") -> tuple[str, Any]:
    """Upload ``content`` and press "run" (a real run); returns the token and the answer."""
    step2 = browser.upload(content, name).headers["Location"]
    response = browser.post(step2, {"mode": "create", "match": "email", "action": "run"})
    return step2.rsplit("/", 1)[1], response


def test_the_task_runs_a_wizard_import_in_process(browser, queued):
    from crmcore.jobs import IMPORT_TASK, celery_app

    token, response = _run(browser, _people(30))
    assert response.headers["Location"].endswith(f"/contacts/import/{token}/run")
    state = runs.read_state(token)
    assert state["run"]["runner"] == "worker" and state["run"]["state"] == "done"
    assert state["run"]["queued_at"] <= state["run"]["started_at"] <= state["run"]["finished_at"]
    assert browser.get(f"/contacts/import/{token}/status").get_json() == {
        "state": "done",
        "done": 30,
        "percent": 100,
        "counts": {"created": 30, "updated": 0, "skipped": 0, "rejected": 0},
    }
    page = text(browser.get(response.headers["Location"]))
    assert '<dd id="report-created">30</dd>' in page and 'id="revert-import"' in page
    assert _count() == 30
    folder = Path(queued.config["IMPORT_FOLDER"])
    assert not (folder / f"{token}.upload").exists()
    # The same job delivered again runs nothing.
    again = celery_app().tasks[IMPORT_TASK].apply((token, str(folder.resolve())))
    assert again.get() == "taken" and _count() == 30


def test_queued_says_waiting_for_a_worker_then_the_worker_runs_it(browser, queued, monkeypatch):
    handed: list[str] = []
    monkeypatch.setattr(runs, "enqueue", handed.append)  # a broker no worker reads yet
    token, response = _run(browser, _people(3))
    assert handed == [token]
    status_url = f"/contacts/import/{token}/status"
    assert browser.get(status_url).get_json()["state"] == "queued"
    page = text(browser.get(response.headers["Location"]))
    assert 'id="import-queued"' in page and "Waiting for a worker…" in page
    assert 'data-state="queued"' in page and "imports.js" in page and 'http-equiv="refresh"' in page
    # The settings page does not restart a queued import.
    assert browser.get(f"/contacts/import/{token}").headers["Location"].endswith(f"/{token}/run")
    browser.post("/language/fr")
    page = text(browser.get(response.headers["Location"]))
    assert "En attente d’un worker…" in page and "dans la file des tâches" in page
    browser.post("/language/en")

    folder = str(Path(queued.config["IMPORT_FOLDER"]).resolve())
    assert runs.run_queued(token, folder) == "done"
    assert runs.run_queued(token, folder) == "taken"
    assert browser.get(status_url).get_json()["counts"]["created"] == 3
    assert '<dd id="report-created">3</dd>' in text(browser.get(response.headers["Location"]))
    assert _count() == 3


def test_a_failure_in_the_worker_says_why_and_what_was_kept(browser, queued, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_SIZE", 500)
    real = importer.Importer._apply_chunk
    chunks = {"n": 0}

    def failing(self: Any, records: Any) -> None:
        if not self.options.dry_run:
            chunks["n"] += 1
            if chunks["n"] == 2:
                raise RuntimeError("disk full\nmore lines of detail")
        real(self, records)

    monkeypatch.setattr(importer.Importer, "_apply_chunk", failing)
    token, response = _run(browser, _people(700))
    run = runs.read_state(token)["run"]
    assert run["state"] == "failed" and run["error_code"] == "unexpected"
    assert run["error"] == "unexpected error: RuntimeError: disk full"
    assert run["done"] == 500 and run["counts"]["created"] == 500 and run["batch"]
    # The first chunk was committed, the second one not.
    assert _count() == 500
    status = browser.get(f"/contacts/import/{token}/status").get_json()
    assert (status["state"], status["percent"], status["done"]) == ("failed", 100, 500)
    page = text(browser.get(response.headers["Location"]))
    assert (
        '<p id="import-error">Unexpected error: RuntimeError: disk full (the details are in the log).' in page
    )
    assert (
        "Before it stopped, 500 records were processed: the 500 contacts created and 0 updated are kept."
        in page
    )
    assert 'id="import-running"' not in page and "imports.js" not in page
    browser.post("/language/fr")
    page = text(browser.get(response.headers["Location"]))
    assert "Erreur inattendue : RuntimeError: disk full" in page
    assert "Avant l’arrêt, 500 enregistrements ont été traités" in page
    # What was kept is an ordinary import batch: it can be reverted.
    assert importer.revert_import(run["batch"], None, "ui")["deleted"] == 500


def test_a_chunk_failing_after_its_rows_were_written_keeps_none_of_them(browser, queued, monkeypatch):
    # The rows of the second chunk are inserted (in a savepoint), then writing its batch items fails:
    # the whole chunk is rolled back, on SQLite as on PostgreSQL.
    monkeypatch.setattr(importer, "CHUNK_SIZE", 500)
    real = importer.Importer._drop_unused_organizations
    chunks = {"n": 0}

    def failing(self: Any) -> None:
        if not self.options.dry_run:
            chunks["n"] += 1
            if chunks["n"] == 2:
                raise RuntimeError("after the insert")
        real(self)

    monkeypatch.setattr(importer.Importer, "_drop_unused_organizations", failing)
    token, _response = _run(browser, _people(700))
    run = runs.read_state(token)["run"]
    assert (run["state"], run["done"], run["counts"]["created"]) == ("failed", 500, 500)
    assert _count() == 500
    assert importer.revert_import(run["batch"], None, "ui")["deleted"] == 500
    assert _count() == 0


def test_a_failure_before_any_chunk_says_nothing_was_imported(browser, monkeypatch):
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(runs, "enqueue", lambda token: None)
    token, response = _run(browser, _people(3))
    monkeypatch.setattr(importer.Importer, "_apply_chunk", broken)
    page = text(browser.get(response.headers["Location"]))
    assert "Unexpected error: RuntimeError: database gone" not in page  # still queued
    runs.run_queued(token, str(runs.folder().resolve()))
    page = text(browser.get(response.headers["Location"]))
    assert (
        "RuntimeError: database gone" in page and '<p id="import-partial">Nothing was imported.</p>' in page
    )


def test_a_queued_import_checks_its_user_and_its_file(browser, queued, monkeypatch):
    monkeypatch.setattr(runs, "enqueue", lambda token: None)
    folder = str(runs.folder().resolve())
    token, response = _run(browser, _people(3))
    user = quick_user("gone@example.com")
    state = runs.read_state(token)
    state["user_id"] = user.id
    runs.save_state(token, state)
    user.active = False
    db.session.commit()
    assert runs.run_queued(token, folder) == "failed"
    assert runs.read_state(token)["run"]["error_code"] == "user_gone"

    token, response = _run(browser, _people(3))
    (Path(folder) / f"{token}.upload").unlink()
    assert runs.run_queued(token, folder) == "failed"
    page = text(browser.get(response.headers["Location"]))
    assert "The uploaded file is no longer in the import folder: upload it again." in page
    # A job naming no token of this folder does nothing.
    assert runs.run_queued("../../etc/passwd", folder) == "refused"
    assert runs.run_queued("x" * 32, folder) == "missing"
    assert _count() == 0


def test_broker_down_leaves_the_import_not_started(crm_app_factory, tmp_path):
    application = crm_app_factory(
        IMPORT_FOLDER=str(tmp_path / "imports"),
        IMPORT_INLINE_SIZE=0,
        CELERY_BROKER_URL="redis://127.0.0.1:9/0",
    )
    with application.app_context():
        browser = Browser(application.test_client(), quick_user("boss@example.com", is_admin=True))
        token, response = _run(browser, _people(3))
        assert response.status_code == 302 and response.headers["Location"].endswith(f"/import/{token}")
        page = text(browser.get(response.headers["Location"]))
        assert "The job queue cannot be reached, so the import did not start" in page
        assert runs.read_state(token)["run"] is None
        assert (tmp_path / "imports" / f"{token}.upload").exists() and _count() == 0


def test_without_a_broker_a_big_import_still_runs_in_a_thread(crm_app_factory, tmp_path):
    application = crm_app_factory(IMPORT_FOLDER=str(tmp_path / "imports"), IMPORT_INLINE_SIZE=0)
    with application.app_context():
        assert not runs.queue_configured()
        browser = Browser(application.test_client(), quick_user("boss@example.com", is_admin=True))
        token, _response = _run(browser, _people(5))
        thread = runs.RUNNING.get(token)
        if thread is not None:
            thread.join(timeout=60)
        run = runs.read_state(token)["run"]
        assert (run["runner"], run["state"]) == ("thread", "done") and _count() == 5


# -- command line -------------------------------------------------------------------------------------


def test_cli_queue_is_refused_without_a_broker(crm_app_factory, tmp_path):
    application = crm_app_factory(IMPORT_FOLDER=str(tmp_path / "imports"))
    path = tmp_path / "people.csv"
    path.write_bytes(_people(2))
    with application.app_context():
        result = application.test_cli_runner().invoke(main, ["import", str(path), "--queue"])
        assert result.exit_code != 0
        assert "no job queue configured: set CRM_CELERY_BROKER_URL" in result.output
        assert not (tmp_path / "imports").exists() and _count() == 0
        # The default stays the import in the foreground.
        result = application.test_cli_runner().invoke(main, ["import", str(path)])
        assert result.exit_code == 0 and "2 created" in result.output


def test_cli_queue_then_status(queued, tmp_path, monkeypatch):
    handed: list[str] = []
    monkeypatch.setattr(runs, "enqueue", handed.append)
    runner = queued.test_cli_runner()
    path = tmp_path / "people.csv"
    path.write_bytes(_people(4) + b"Bad,,not-an-email\n")
    result = runner.invoke(main, ["import", str(path), "--queue", "--mode", "upsert", "--map", "first_name="])
    assert result.exit_code == 0, result.output
    token = result.output.split("import queued: ", 1)[1].split()[0]
    assert handed == [token]
    assert f"follow it with: crm import --status {token}" in result.output
    state = runs.read_state(token)
    assert state["user_id"] is None and state["source"] == "import"
    assert state["settings"]["mode"] == "create-or-update" and state["settings"]["overrides"] == [
        "first_name="
    ]

    status = runner.invoke(main, ["import", "--status", token])
    assert status.exit_code == 0 and f"{token}: queued, waiting for a worker" in status.output
    # A job of the command line is not a wizard of the web pages.
    browser = Browser(queued.test_client(), quick_user("boss@example.com", is_admin=True))
    assert browser.get(f"/contacts/import/{token}/status").status_code == 404

    assert runs.run_queued(token, str(runs.folder().resolve())) == "done"
    status = runner.invoke(main, ["import", "--status", token])
    assert status.exit_code == 0, status.output
    assert f"{token}: done\n4 created, 0 updated, 0 skipped, 1 rejected" in status.output
    assert "  line 6: last_name: is required" in status.output and "'not-an-email'" in status.output
    assert "undo with: crm import --revert imp-" in status.output
    shown = json.loads(runner.invoke(main, ["import", "--status", token, "--json"]).output)
    assert shown["state"] == "done" and shown["report"]["created"] == 4 and shown["batch"]
    assert {c.first_name for c in db.session.scalars(select(Contact))} == {None}

    # Refused before anything is queued: a wrong --map, an unknown token.
    result = runner.invoke(main, ["import", str(path), "--queue", "--map", "email=nonsense"])
    assert result.exit_code != 0 and "'nonsense' is not an import field" in result.output
    assert handed == [token] and sorted(p.name for p in runs.folder().iterdir()) == [
        f"{token}.claim",
        f"{token}.json",
    ]
    result = runner.invoke(main, ["import", "--status", "x" * 32])
    assert result.exit_code != 0 and "no import " + "x" * 32 in result.output


def test_cli_status_of_a_failed_job(queued, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "enqueue", lambda token: None)
    runner = queued.test_cli_runner()
    path = tmp_path / "people.json"
    path.write_text(json.dumps([{"kind": "person", "last_name": "Json"}]))
    result = runner.invoke(main, ["import", str(path), "--queue", "--json"])
    token = json.loads(result.output)["token"]
    monkeypatch.setattr(importer.Importer, "_apply_chunk", lambda self, records: 1 / 0)
    assert runs.run_queued(token, str(runs.folder().resolve())) == "failed"
    status = runner.invoke(main, ["import", "--status", token])
    assert status.exit_code == 1
    assert (
        f"{token}: failed: unexpected error: ZeroDivisionError: division by zero\nnothing was imported"
        in (status.output)
    )


# -- a real worker on Redis ---------------------------------------------------------------------------


@pytest.mark.skipif(not _redis_available(), reason=f"Redis is not reachable at {REDIS_URL}")
def test_a_worker_process_on_redis_runs_wizard_and_cli_imports(crm_app_factory, tmp_path):
    import redis

    queue = f"crm-test-{uuid.uuid4().hex[:12]}"
    application = crm_app_factory(
        IMPORT_FOLDER=str(tmp_path / "imports"),
        IMPORT_INLINE_SIZE=0,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_QUEUE=queue,
    )
    log_path = tmp_path / "worker.log"
    worker = None
    try:
        with application.app_context():
            assert runs.queue_configured()
            browser = Browser(application.test_client(), quick_user("boss@example.com", is_admin=True))
            token, response = _run(browser, _people(1200))
            status_url = f"/contacts/import/{token}/status"
            # No worker yet: the job waits in Redis and the page says so.
            assert browser.get(status_url).get_json()["state"] == "queued"
            assert "Waiting for a worker…" in text(browser.get(response.headers["Location"]))

            # The worker is another process, in another folder, told nothing of the import folder.
            environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
            environment.update(
                CRM_DATABASE_URL=application.config["DATABASE_URL"],
                CRM_CELERY_BROKER_URL=REDIS_URL,
                CRM_CELERY_QUEUE=queue,
                CRM_SECRET_KEY="test-secret",
                PYTHONPATH=str(Path(__file__).resolve().parent.parent),
            )
            (tmp_path / "elsewhere").mkdir()
            with open(log_path, "wb") as log:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "crmcore", "worker", "--concurrency", "1", "--loglevel", "INFO"],
                    env=environment,
                    cwd=tmp_path / "elsewhere",
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            seen = {"queued"}
            deadline = time.monotonic() + 120
            status = browser.get(status_url).get_json()
            while status["state"] in ("queued", "running") and time.monotonic() < deadline:
                assert worker.poll() is None, log_path.read_text()
                time.sleep(0.1)
                status = browser.get(status_url).get_json()
                seen.add(status["state"])
            assert status["state"] == "done", (status, log_path.read_text())
            assert status["counts"]["created"] == 1200 and status["done"] == 1200
            assert '<dd id="report-created">1200</dd>' in text(browser.get(response.headers["Location"]))
            assert _count() == 1200
            assert runs.read_state(token)["run"]["runner"] == "worker"

            # crm import --queue: the same worker runs it; --status follows it.
            path = tmp_path / "more.csv"
            path.write_bytes(_people(5, start=5000))
            runner = application.test_cli_runner()
            result = runner.invoke(main, ["import", str(path), "--queue"])
            assert result.exit_code == 0, result.output
            job = result.output.split("import queued: ", 1)[1].split()[0]
            deadline = time.monotonic() + 60
            while runs.read_state(job)["run"]["state"] != "done" and time.monotonic() < deadline:
                time.sleep(0.1)
            status = runner.invoke(main, ["import", "--status", job])
            assert f"{job}: done\n5 created" in status.output, (status.output, log_path.read_text())
            assert _count() == 1205
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        client = redis.Redis.from_url(REDIS_URL)
        leftovers = list(client.scan_iter(match=f"*{queue}*"))
        if leftovers:
            client.delete(*leftovers)
        client.close()
