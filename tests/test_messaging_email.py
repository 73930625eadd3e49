"""The built-in email channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


class Recorder:
    """aiosmtpd handler: keeps every message; can refuse the next RCPT with a given reply."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse_rcpt: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if self.refuse_rcpt:
            return self.refuse_rcpt.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp() -> Any:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


@pytest.fixture
def mail_app(crm_app_factory: Any, smtp: Any) -> Any:
    _recorder, port = smtp
    application = crm_app_factory(
        PLUGINS=[],
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),  # as it comes from the environment
        SMTP_TIMEOUT="5",
        MAIL_FROM="crm@example.com",
        MAIL_FROM_NAME="Acme CRM",
        MESSAGE_MAX_ATTEMPTS=2,
    )
    with application.app_context():
        yield application


def _contact(**fields: Any) -> Any:
    from crmcore.services.contacts import create_contact

    data = {
        "kind": "person",
        "first_name": "Léa",
        "last_name": "Durand",
        "emails": [
            {"address": "lea@example.org", "accepts_email": True},
            {"address": "lea.perso@example.org", "accepts_email": False},
        ],
        **fields,
    }
    return create_contact(data, None, "api")


def test_email_goes_out_through_smtp(mail_app: Any, smtp: Any) -> None:
    from crmcore.services.messaging import send_message

    recorder, _port = smtp
    contact = _contact()
    message = send_message(
        contact.id,
        {
            "channel": "email",
            "subject": "Bonjour {{ contact.first_name }}",
            "body": "Votre devis est prêt.\n",
        },
    )
    assert message.status == "sent", message.error
    assert recorder.envelopes == [("crm@example.com", ["lea@example.org"])]
    received = recorder.messages[0]
    assert received["Subject"] == "Bonjour Léa"
    assert received["From"] == "Acme CRM <crm@example.com>"
    assert received["Message-ID"] == f"<{message.idempotency_key}@example.com>"
    assert message.provider_id == received["Message-ID"]
    assert received.get_content().replace("\r\n", "\n") == "Votre devis est prêt.\n"


def test_smtp_refusals(mail_app: Any, smtp: Any) -> None:
    from crmcore.services.messaging import send_message

    recorder, _port = smtp
    contact = _contact()
    recorder.refuse_rcpt = ["550 5.1.1 No such user"]
    permanent = send_message(contact.id, {"channel": "email", "subject": "S", "body": "B"})
    assert permanent.status == "failed" and "550" in permanent.error and permanent.attempts == 1

    recorder.refuse_rcpt = ["451 4.7.1 Greylisted, try later"]
    temporary = send_message(contact.id, {"channel": "email", "subject": "S", "body": "again"})
    assert temporary.status == "sent" and temporary.attempts == 2
    assert len(recorder.messages) == 1


def test_unreachable_server_is_retried_then_failed(crm_app_factory: Any) -> None:
    from crmcore.services.messaging import send_message

    application = crm_app_factory(
        PLUGINS=[],
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=_free_port(),
        MAIL_FROM="crm@example.com",
        MESSAGE_MAX_ATTEMPTS=2,
    )
    with application.app_context():
        message = send_message(_contact().id, {"channel": "email", "subject": "S", "body": "B"})
        assert message.status == "failed"
        assert message.attempts == 2
        assert message.error.startswith("gave up after 2 attempts: cannot reach the SMTP server")


def test_missing_sender_is_a_clear_permanent_failure(crm_app_factory: Any) -> None:
    from crmcore.services.messaging import send_message

    application = crm_app_factory(PLUGINS=[], MAIL_FROM=None)
    with application.app_context():
        message = send_message(_contact().id, {"channel": "email", "subject": "S", "body": "B"})
        assert message.status == "failed" and "CRM_MAIL_FROM" in message.error and message.attempts == 1


def test_email_channel_can_be_disabled(crm_app_factory: Any) -> None:
    application = crm_app_factory(PLUGINS=[], DISABLED_BUILTINS=["email"])
    with application.app_context():
        from crmcore.errors import ValidationError
        from crmcore.services.messaging import send_message

        with pytest.raises(ValidationError) as refused:
            send_message(_contact().id, {"channel": "email", "subject": "S", "body": "B"})
        assert "unknown channel 'email'" in refused.value.errors["channel"][0]
