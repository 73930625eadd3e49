"""Delivery through a real Celery worker on Redis (``CRM_CELERY_BROKER_URL``), started in a thread."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from crmcore.errors import ChannelError
from crmcore.plugin_api import Channel, OutboundMessage, SendResult, hookimpl

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_available(), reason=f"Redis is not reachable at {REDIS_URL}")


class SlowChannels:
    """A phone channel; fails with retryable errors on demand; counts calls per message."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.calls = 0
        self.failures: list[Exception] = []
        self.lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self.lock:
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append(message)
        return SendResult(provider_id=f"p-{message.id}", status="sent")

    @hookimpl
    def register_channels(self) -> list[Channel]:
        return [Channel(key="fakesms", label="Fake SMS", target="phone", consent="sms", send=self.send)]


@pytest.fixture
def redis_app(register_plugin: Any) -> Any:
    import redis

    queue = f"crm-test-{uuid.uuid4().hex[:12]}"
    channels = SlowChannels()
    application = register_plugin(
        channels,
        "slowchannels",
        PLUGINS=[],
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_QUEUE=queue,
        MESSAGE_RETRY_BACKOFF="0.2",
        MESSAGE_MAX_ATTEMPTS="3",
    )
    with application.app_context():
        yield application, channels
    client = redis.Redis.from_url(REDIS_URL)
    leftovers = list(client.scan_iter(match=f"*{queue}*"))
    if leftovers:
        client.delete(*leftovers)
    client.close()


def _wait_for(message_id: int, statuses: tuple[str, ...], timeout: float = 30.0) -> Any:
    """Poll the database until the worker has moved the message to one of ``statuses``."""
    from crmcore.extensions import db
    from crmcore.models import Message

    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        message = db.session.get(Message, message_id, populate_existing=True)
        if message.status in statuses or time.monotonic() > deadline:
            return message
        time.sleep(0.05)


def _contact() -> Any:
    from crmcore.services.contacts import create_contact

    return create_contact(
        {"kind": "person", "last_name": "Queue", "phones": [{"number": "+33612345678", "sms": True}]},
        None,
        "api",
    )


def test_a_worker_on_redis_delivers_and_retries(redis_app: Any) -> None:
    from celery.contrib.testing.worker import start_worker

    from crmcore.jobs import celery_app, is_eager
    from crmcore.services.messaging import send_message
    from crmcore.services.users import create_token, create_user

    app, channels = redis_app
    assert not is_eager()
    admin = create_user("queue@example.com", None, is_admin=True)
    _row, token = create_token(admin.id, "t")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    contact = _contact()
    # Queued before any worker runs: the API answers 202 and the broker keeps the job.
    response = client.post(
        f"/api/v1/contacts/{contact.id}/messages", json={"channel": "fakesms", "body": "one"}
    )
    assert response.status_code == 202, response.json
    assert response.json["status"] == "queued" and response.json["attempts"] == 0

    channels.failures = []
    with start_worker(celery_app(app), pool="solo", perform_ping_check=False, shutdown_timeout=10):
        first = _wait_for(response.json["id"], ("sent", "failed"))
        assert first.status == "sent" and first.attempts == 1

        # A provider error: retried by the worker after its back-off, sent once.
        channels.failures = [ChannelError("provider timeout", retryable=True)]
        second = send_message(contact.id, {"channel": "fakesms", "body": "two"})
        assert second.status == "queued"
        second = _wait_for(second.id, ("sent", "failed"))
        assert second.status == "sent" and second.attempts == 2

        # The same job delivered twice more (a redelivery, a sweep): the message goes out once.
        from crmcore.jobs import enqueue_delivery

        third = send_message(contact.id, {"channel": "fakesms", "body": "three"})
        assert enqueue_delivery([third.id, third.id]) == []
        # The solo worker takes jobs in order: once "four" is out, the duplicates were handled.
        fourth = send_message(contact.id, {"channel": "fakesms", "body": "four"})
        assert _wait_for(fourth.id, ("sent", "failed")).status == "sent"
        assert _wait_for(third.id, ("sent", "failed")).status == "sent"

    assert [m.body for m in channels.sent] == ["one", "two", "three", "four"]
    assert channels.calls == 5  # one failed attempt of "two", no second send of "three"


def test_broker_down_keeps_the_message_queued(register_plugin: Any) -> None:
    channels = SlowChannels()
    app = register_plugin(channels, "slowchannels", PLUGINS=[], CELERY_BROKER_URL="redis://127.0.0.1:9/0")
    with app.app_context():
        from crmcore.services.messaging import send_message

        message = send_message(_contact().id, {"channel": "fakesms", "body": "later"})
        assert message.status == "queued" and message.attempts == 0
        assert channels.calls == 0
