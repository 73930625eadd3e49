"""Background jobs with Celery. The Celery app is built by the app factory, one per Flask app.

* No broker configured: tasks run in-process, at once (``task_always_eager``); a retry runs
  immediately, without waiting for its back-off.
* ``CRM_CELERY_BROKER_URL`` set (e.g. ``redis://127.0.0.1:6379/0``): tasks go to that broker and
  ``crm worker`` runs them.

Every task runs inside a fresh application context of its Flask app, so it has its own database
session. Nothing here is bound to an app at import time.

Tasks: message delivery (``crm.deliver_message``, and the periodic ``crm.requeue_pending_messages``)
and imports (``crm.run_import``: a file waiting in the import folder, see
:mod:`crmcore.interchange.runs`).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from flask import Flask, current_app

log = logging.getLogger("crmcore.jobs")

DELIVER_TASK = "crm.deliver_message"
REQUEUE_TASK = "crm.requeue_pending_messages"
IMPORT_TASK = "crm.run_import"


def _int(app: Flask, name: str, default: int) -> int:
    value = app.config.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        from crmcore.config import ConfigError

        raise ConfigError(f"CRM_{name}: expected an integer, got {value!r}") from None


def init_jobs(app: Flask) -> Celery:
    """Create the Celery app of ``app`` (kept in ``app.extensions["crm_celery"]``) and register the tasks."""
    broker = app.config.get("CELERY_BROKER_URL") or None
    flask_app = app

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=FlaskTask, set_as_current=False)
    celery.conf.update(
        broker_url=broker or "memory://localhost/",
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or None,
        task_ignore_result=True,
        task_always_eager=broker is None,
        # In-process: a failing task must not break the request that queued it (its message says why).
        task_eager_propagates=False,
        task_default_queue=app.config.get("CELERY_QUEUE") or "crm",
        # A task is acknowledged after it ran: a worker that dies mid-task leaves it to another one.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Publishing gives up quickly when the broker is down: the message stays queued in the
        # database and ``crm messages requeue`` (or the periodic task) hands it over later.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        broker_transport_options={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        beat_schedule={
            "requeue-pending-messages": {
                "task": REQUEUE_TASK,
                "schedule": float(_int(app, "MESSAGE_REQUEUE_INTERVAL", 300)),
            }
        },
        worker_hijack_root_logger=False,
    )

    @celery.task(name=DELIVER_TASK, bind=True, max_retries=None, shared=False)
    def deliver_message(self: Task, message_id: int) -> str:
        from crmcore.services.messaging import deliver

        outcome = deliver(message_id)
        if outcome.retry_in is not None:
            raise self.retry(countdown=outcome.retry_in)
        return outcome.state

    @celery.task(name=REQUEUE_TASK, shared=False)
    def requeue_pending_messages() -> int:
        from crmcore.services.messaging import requeue_pending

        return requeue_pending()

    # Acknowledged when a worker takes it, not after: an import lost with its worker must not start
    # again from the first row (the chunks it committed would be imported twice). Its state file
    # keeps what it had done; ``run_queued`` also refuses a job delivered twice.
    @celery.task(name=IMPORT_TASK, shared=False, acks_late=False)
    def run_import(token: str, folder: str) -> str:
        from crmcore.interchange.runs import run_queued

        return run_queued(token, folder)

    app.extensions["crm_celery"] = celery
    return celery


def celery_app(app: Flask | None = None) -> Celery:
    """The Celery app of ``app`` (default: the current Flask app)."""
    return (app or current_app).extensions["crm_celery"]


def is_eager(app: Flask | None = None) -> bool:
    return bool(celery_app(app).conf.task_always_eager)


def enqueue_delivery(message_ids: list[int]) -> list[int]:
    """Hand messages to the job queue (run them at once without a broker); return the ids not queued.

    Call only after the transaction that created the messages committed. A message the broker
    refused stays ``queued`` in the database and is picked up by :func:`requeue_pending`.
    """
    celery = celery_app()
    task = celery.tasks[DELIVER_TASK]
    failed: list[int] = []
    for message_id in message_ids:
        try:
            task.apply_async((message_id,))
        except Exception as exc:  # broker down: the database still has the message
            log.warning("could not queue message %s: %s", message_id, exc)
            failed.append(message_id)
    return failed
