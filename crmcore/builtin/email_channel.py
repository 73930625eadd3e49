"""Built-in plugin: the email channel (SMTP delivery through :mod:`crmcore.mail`).

Settings: ``CRM_SMTP_HOST`` (localhost), ``CRM_SMTP_PORT`` (25), ``CRM_SMTP_USER``/``CRM_SMTP_PASSWORD``
(login when set), ``CRM_SMTP_STARTTLS`` (0), ``CRM_SMTP_SSL`` (0, implicit TLS, e.g. port 465),
``CRM_SMTP_TIMEOUT`` (30 s), ``CRM_MAIL_FROM`` (required), ``CRM_MAIL_FROM_NAME``.

The Message-ID is derived from the message's idempotency key, so a message is recognisable as
the same one everywhere (the core never hands a message to SMTP twice once the server accepted it).
"""

from __future__ import annotations

from email.message import EmailMessage

from flask import current_app, url_for

from crmcore.mail import MailError, build_message, send, sender_address
from crmcore.plugin_api import (
    Action,
    Channel,
    ChannelError,
    Contact,
    OutboundMessage,
    SendResult,
    hookimpl,
)


def build_email(message: OutboundMessage) -> EmailMessage:
    if not sender_address():
        raise ChannelError("email is not configured: set CRM_MAIL_FROM (and CRM_SMTP_HOST)", retryable=False)
    return build_message(
        [message.to],
        message.subject or "",
        message.body,
        message_id=message.idempotency_key,
        headers={"X-CRM-Message": str(message.id)},
    )


def send_email(message: OutboundMessage) -> SendResult:
    """Deliver ``message`` through :mod:`crmcore.mail`; ChannelError (retryable or not) on failure."""
    email = build_email(message)
    try:
        send(email)
    except MailError as exc:
        raise ChannelError(str(exc), retryable=exc.retryable) from exc
    return SendResult(provider_id=email["Message-ID"], status="sent")


@hookimpl
def register_channels() -> list[Channel]:
    return [
        Channel(
            key="email",
            label={"en": "Email", "fr": "Email"},
            target="email",
            consent="accepts_email",
            send=send_email,
            has_subject=True,
        )
    ]


def _compose_available() -> bool:
    # The compose page comes from the "messages" built-in, which can be disabled.
    return "crm_messages.compose" in current_app.view_functions


@hookimpl
def contact_actions(contact: Contact) -> list[Action]:
    if not contact.emails or not _compose_available():
        return []
    return [
        Action(
            key="send_email",
            label={"en": "Send email", "fr": "Envoyer un email"},
            url=url_for("crm_messages.compose", channel="email", ids=contact.id),
            icon="mail",
            order=40,
        )
    ]


@hookimpl
def register_mass_actions() -> list[Action]:
    if not _compose_available():
        return []
    return [
        Action(
            key="send_email",
            label={"en": "Send email", "fr": "Envoyer un email"},
            url=url_for("crm_messages.compose", channel="email"),
            icon="mail",
            order=40,
        )
    ]
