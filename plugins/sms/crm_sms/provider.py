"""Sending SMS and WhatsApp messages with the Twilio Messaging API (the ``twilio`` library).

Settings (``CRM_`` in the environment):
* ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``;
* ``TWILIO_FROM`` (a number) or ``TWILIO_MESSAGING_SERVICE_SID`` (preferred when set);
  ``TWILIO_WHATSAPP_FROM`` for WhatsApp (default: ``TWILIO_FROM``);
* ``TWILIO_API_BASE_URL`` (optional): the client's API base URL (a test server, a regional edge);
* ``TWILIO_TIMEOUT`` (seconds, default 15);
* ``PUBLIC_URL``: where Twilio reaches this CRM; every message carries a StatusCallback URL built
  on it. Without it messages are sent without status callbacks and stay ``sent``.

Twilio has no idempotency key for message creation. A message is still never sent twice: the core
claims it before calling :func:`send` and never hands a message the provider accepted to a worker
again; a status callback (it carries our message id in its URL) marks a message as accepted even
when Twilio's answer to the create request was lost.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from flask import current_app, url_for
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from crmcore.plugin_api import ChannelError, OutboundMessage, SendResult, setting

log = logging.getLogger("crm_sms")

#: Twilio's message statuses -> the core's.
STATUS_MAP = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}


def _number(name: str, default: float) -> float:
    value = setting(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ChannelError(f"CRM_{name} must be a number, got {value!r}", retryable=False) from None


def client() -> Client:
    """The Twilio client of this application (built once, on first use)."""
    cache = current_app.extensions.setdefault("crm_sms", {})
    if "client" not in cache:
        sid, token = setting("TWILIO_ACCOUNT_SID"), setting("TWILIO_AUTH_TOKEN")
        if not sid or not token:
            raise ChannelError(
                "Twilio is not configured: set CRM_TWILIO_ACCOUNT_SID and CRM_TWILIO_AUTH_TOKEN",
                retryable=False,
            )
        http = TwilioHttpClient(timeout=_number("TWILIO_TIMEOUT", 15.0))
        # environment={} : never pick credentials or an edge from the process environment.
        twilio = Client(sid, token, environment={}, http_client=http)
        base_url = setting("TWILIO_API_BASE_URL")
        if base_url:
            twilio.api.base_url = str(base_url).rstrip("/")
        cache["client"] = twilio
    return cache["client"]


def status_callback_url(message_id: int) -> str | None:
    base = setting("PUBLIC_URL")
    if not base:
        return None
    with current_app.test_request_context(base_url=str(base)):
        return url_for("crm_sms.status_callback", message_id=message_id, _external=True)


def _sender(whatsapp: bool) -> dict[str, str]:
    service = setting("TWILIO_MESSAGING_SERVICE_SID")
    if service:
        return {"messaging_service_sid": service}
    number = (setting("TWILIO_WHATSAPP_FROM") if whatsapp else None) or setting("TWILIO_FROM")
    if not number:
        raise ChannelError(
            "no sender: set CRM_TWILIO_FROM or CRM_TWILIO_MESSAGING_SERVICE_SID", retryable=False
        )
    if whatsapp and not str(number).startswith("whatsapp:"):
        number = f"whatsapp:{number}"
    return {"from_": str(number)}


def send(message: OutboundMessage, whatsapp: bool = False) -> SendResult:
    """Create the message at Twilio; ChannelError (retryable for 429/5xx and network errors) on failure."""
    to = f"whatsapp:{message.to}" if whatsapp else message.to
    params: dict[str, Any] = {"to": to, "body": message.body, **_sender(whatsapp)}
    callback = status_callback_url(message.id)
    if callback:
        params["status_callback"] = callback
    try:
        created = client().messages.create(**params)
    except TwilioRestException as exc:
        retryable = exc.status == 429 or exc.status >= 500
        code = f" (error {exc.code})" if exc.code else ""
        raise ChannelError(f"Twilio answered {exc.status}{code}: {exc.msg}", retryable=retryable) from exc
    except requests.RequestException as exc:
        raise ChannelError(f"Twilio could not be reached: {exc}", retryable=True) from exc
    status = STATUS_MAP.get(str(created.status or ""), "queued")
    if status in ("failed", "undelivered"):
        raise ChannelError(f"Twilio refused the message: {created.error_message or status}", retryable=False)
    if callback is None and status == "queued":
        status = "sent"  # no callback will tell us more: Twilio has it
    return SendResult(provider_id=created.sid, status=status)  # type: ignore[arg-type]


def send_sms(message: OutboundMessage) -> SendResult:
    return send(message, whatsapp=False)


def send_whatsapp(message: OutboundMessage) -> SendResult:
    return send(message, whatsapp=True)
