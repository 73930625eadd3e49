"""Routes of crm-sms: Twilio webhooks (status callbacks, inbound messages), the compose page, segments.

Webhooks are public (Twilio does not sign in) and accepted only with a valid ``X-Twilio-Signature``
computed over the URL as received (``CRM_TWILIO_BEHIND_PROXY=1``: the scheme and host from
``X-Forwarded-Proto``/``X-Forwarded-Host``, as the proxy received them). Anything else gets 403.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, Response, abort, jsonify, render_template, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from crm_sms.models import OptOut, WebhookEvent
from crm_sms.provider import STATUS_MAP
from crm_sms.segments import count_segments
from crmcore.plugin_api import (
    CrmError,
    NotFound,
    ValidationError,
    current_user,
    db,
    get_contact,
    get_message,
    localize,
    message_template_choices,
    public,
    record_inbound,
    send_bulk,
    send_message,
    setting,
    transaction,
    update_message_status,
    withdraw_consent,
)

log = logging.getLogger("crm_sms")

bp = Blueprint(
    "crm_sms",
    __name__,
    url_prefix="/plugins/sms",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: Replies that withdraw consent (Twilio's standard opt-out words, and the French ones).
STOP_WORDS = {
    "STOP",
    "STOPALL",
    "STOP SMS",
    "STOPSMS",
    "ARRET",
    "ARRET SMS",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
}
_TRUE = {"1", "true", "yes", "on"}


def stop_keyword(body: str | None) -> str | None:
    """The opt-out keyword ``body`` is (case, accents, spaces and final punctuation ignored), else None."""
    text = unicodedata.normalize("NFKD", body or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).upper()
    text = re.sub(r"\s+", " ", re.sub(r"[.!?,;:]+$", "", text.strip())).strip()
    return text if text in STOP_WORDS else None


def _flag(name: str) -> bool:
    value = setting(name)
    return value is True or str(value or "").strip().lower() in _TRUE


def url_as_received() -> str:
    url = request.url
    if not _flag("TWILIO_BEHIND_PROXY"):
        return url
    parts = urlsplit(url)
    scheme = (request.headers.get("X-Forwarded-Proto") or parts.scheme).split(",")[0].strip()
    host = (request.headers.get("X-Forwarded-Host") or parts.netloc).split(",")[0].strip()
    return urlunsplit((scheme, host, parts.path, parts.query, parts.fragment))


def _check_signature() -> None:
    token = setting("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        abort(403)
    if not RequestValidator(str(token)).validate(url_as_received(), request.form, signature):
        log.warning("refused a Twilio webhook with an invalid signature: %s", request.url)
        abort(403)


def _log_event(kind: str, status: str | None, message_id: int | None) -> None:
    with transaction():
        db.session.add(
            WebhookEvent(
                kind=kind,
                message_sid=request.form.get("MessageSid") or request.form.get("SmsSid"),
                status=status,
                message_id=message_id,
                payload=request.form.to_dict(flat=True),
            )
        )


@bp.route("/status/<int:message_id>", methods=["POST"])
@public
def status_callback(message_id: int) -> Any:
    """Twilio's StatusCallback for one of our messages: moves its status forward."""
    _check_signature()
    twilio_status = request.form.get("MessageStatus") or request.form.get("SmsStatus") or ""
    sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    _log_event("status", twilio_status, message_id)
    try:
        message = get_message(message_id)
    except NotFound:
        abort(404)
    if message.channel not in ("sms", "whatsapp"):
        abort(404)
    status = STATUS_MAP.get(twilio_status)
    if status is None:
        return Response(status=204)  # a status we do not track (e.g. "receiving")
    code = request.form.get("ErrorCode")
    error = (
        f"Twilio error {code}: {request.form.get('ErrorMessage') or 'see the Twilio error code'}"
        if code
        else None
    )
    try:
        update_message_status(message_id, status, provider_id=sid, error=error)
    except ValidationError as exc:  # the callback is about another Twilio message than ours
        log.warning("status callback for message %s refused: %s", message_id, exc.errors)
        abort(409)
    return Response(status=204)


@bp.route("/inbound", methods=["POST"])
@public
def inbound() -> Any:
    """Twilio's incoming-message webhook: log the message on its contact; STOP withdraws consent."""
    _check_signature()
    sender = request.form.get("From", "")
    recipient = request.form.get("To", "")
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    sender, recipient = sender.removeprefix("whatsapp:"), recipient.removeprefix("whatsapp:")
    if not sender:
        abort(400)
    body = request.form.get("Body", "")
    message = record_inbound(channel, sender, recipient, body, provider_id=request.form.get("MessageSid"))
    _log_event("inbound", "received", message.id)
    keyword = stop_keyword(body)
    if keyword:
        changed = withdraw_consent(channel, sender, source="inbound")
        with transaction():
            db.session.add(
                OptOut(
                    phone=message.from_address or sender,
                    channel=channel,
                    keyword=keyword,
                    contact_ids=changed,
                    message_id=message.id,
                )
            )
    return Response(str(MessagingResponse()), mimetype="text/xml")


@bp.route("/segments", methods=["POST"])
def segments() -> Any:
    """``{"body": "..."}`` -> encoding (GSM-7/UCS-2), characters, units, segments, per_segment, remaining."""
    data = request.get_json(silent=True) or {}
    body = data.get("body")
    if not isinstance(body, str):
        return jsonify(
            {
                "code": 422,
                "status": "Unprocessable Entity",
                "message": "invalid body",
                "errors": {"body": ["is required: a string"]},
            }
        ), 422
    return jsonify(count_segments(body).to_dict())


def _ids() -> list[int]:
    return [int(v) for v in request.values.getlist("ids") if v.isdigit()]


@bp.route("/compose", methods=["GET", "POST"])
def compose() -> Any:
    """Write an SMS (or WhatsApp) to one contact or to a selection (``ids`` repeated)."""
    user = current_user()
    channel = request.values.get("channel") or "sms"
    if channel not in ("sms", "whatsapp"):
        abort(404)
    ids = _ids()
    contacts = []
    for contact_id in ids[:20]:
        try:
            contacts.append(get_contact(contact_id, user))
        except CrmError:
            continue
    context: dict[str, Any] = {
        "channel": channel,
        "ids": ids,
        "contacts": contacts,
        "form": request.form,
        "errors": {},
        "message": None,
        "outcomes": None,
        "templates": message_template_choices(channel, request.values.get("lang")),
        "title": localize(
            {"en": "Send SMS", "fr": "Envoyer un SMS"}
            if channel == "sms"
            else {"en": "Send WhatsApp", "fr": "Envoyer un WhatsApp"},
            request.values.get("lang"),
        ),
    }
    status = 200
    if request.method == "POST":
        data = {
            "channel": channel,
            "body": request.form.get("body") or None,
            "template": request.form.get("template") or None,
        }
        try:
            if not ids:
                raise ValidationError({"ids": ["select at least one contact"]})
            if len(ids) == 1:
                data["to"] = request.form.get("to") or None
                context["message"] = send_message(ids[0], data, user, "ui")
            else:
                _batch, context["outcomes"] = send_bulk(ids, data, user, "ui")
        except CrmError as exc:
            context["errors"] = getattr(exc, "errors", None) or {"_record": [exc.message]}
            status = exc.status
    return render_template("crm_sms/compose.html", **context), status
