"""Messaging: consent checks, the message log, sending (one or many) and delivery through the job queue.

A message goes out only when
* the user may change the contact and the contact has no blocking warning (:func:`ensure_not_blocked`);
* for email: the contact is not ``do_not_email``;
* the target address/phone belongs to the contact and carries the channel's consent flag
  (``accepts_email`` on the email; ``sms``/``whatsapp``... on the phone).
A refusal is a :class:`MessageRefused` (422) whose ``reason`` and message say why.

Delivery: the message is written ``queued`` and committed, then handed to the job queue
(:mod:`crmcore.jobs`). The worker *claims* it with one conditional UPDATE (only a queued message
never handed to a provider, and not claimed by another worker, can be claimed), calls the channel's
``send`` and records the result. Provider errors marked retryable are retried with exponential
back-off up to ``CRM_MESSAGE_MAX_ATTEMPTS``; a message a provider accepted is never sent again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, func, or_, select, update

from crmcore.contributions import Channel, OutboundMessage, SendResult, localize
from crmcore.errors import ChannelError, CrmError, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, ContactEmail, ContactPhone, ContactWarning, Message, User, utcnow
from crmcore.services import access
from crmcore.services import message_templates as templates
from crmcore.services.contacts import EAGER, ensure_not_blocked, get_contact, update_contact
from crmcore.services.phones import InvalidPhone, to_e164
from crmcore.services.serialize import email_to_dict, phone_to_dict
from crmcore.services.transactions import transaction
from crmcore.state import crm_state

log = logging.getLogger("crmcore.messaging")

OUTBOUND_STATUSES = ("queued", "sent", "delivered", "failed", "undelivered")
STATUSES = (*OUTBOUND_STATUSES, "received")
#: A status only moves forward: a late "sent" callback never overwrites "delivered".
_RANK = {"queued": 0, "sent": 1, "delivered": 2, "undelivered": 3, "failed": 3}
MAX_SUBJECT = 300
MAX_BODY = 100_000


class MessageRefused(CrmError):
    """The message may not go out; ``reason`` is a stable code, the message says why in words.

    Reasons: ``do_not_email``, ``no_consent``, ``unknown_target``, ``no_target``.
    A blocking warning is a :class:`crmcore.errors.BlockedContact` (409) instead.
    """

    status = 422

    def __init__(self, message: str, reason: str, field: str = "to") -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "reason": self.reason, "errors": {self.field: [self.message]}}


# -- settings --------------------------------------------------------------------------------------


def _setting_int(name: str, default: int) -> int:
    value = current_app.config.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        from crmcore.config import ConfigError

        raise ConfigError(f"CRM_{name}: expected an integer, got {value!r}") from None


def _setting_float(name: str, default: float) -> float:
    value = current_app.config.get(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        from crmcore.config import ConfigError

        raise ConfigError(f"CRM_{name}: expected a number, got {value!r}") from None


def max_attempts() -> int:
    return max(1, _setting_int("MESSAGE_MAX_ATTEMPTS", 5))


def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2...): exponential, capped."""
    base = _setting_float("MESSAGE_RETRY_BACKOFF", 30.0)
    cap = _setting_float("MESSAGE_RETRY_BACKOFF_MAX", 3600.0)
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


# -- channels and consent --------------------------------------------------------------------------


def channels() -> dict[str, Channel]:
    return dict(crm_state().channels)


def get_channel(key: Any, field: str = "channel") -> Channel:
    channel = crm_state().channels.get(key) if isinstance(key, str) else None
    if channel is None:
        known = ", ".join(sorted(crm_state().channels)) or "none (no channel plugin is enabled)"
        raise ValidationError({field: [f"unknown channel {key!r}; available: {known}"]})
    return channel


def _label(channel: Channel) -> str:
    return localize(channel.label, "en")


def resolve_target(contact: Contact, channel: Channel, to: str | None) -> str:
    """The address (email) or E.164 number (phone) to send to, after the consent checks.

    ``to`` None picks the first address/phone of the contact that has the consent (primary email first).
    """
    name = contact.display_name or contact.number
    if channel.target == "email":
        if contact.do_not_email:
            raise MessageRefused(f"{name} does not want to receive emails (do not email)", "do_not_email")
        emails = sorted(contact.emails, key=lambda e: (not e.primary, e.position))
        if to is None:
            for email in emails:
                if email.accepts_email:
                    return email.address
            raise MessageRefused(f"{name} has no email address that accepts emails", "no_target")
        wanted = to.strip().lower()
        match = next((e for e in emails if e.address_key == wanted), None)
        if match is None:
            raise MessageRefused(f"{to} is not an email address of {name}", "unknown_target")
        if not match.accepts_email:
            raise MessageRefused(f"{match.address} has not agreed to receive emails", "no_consent")
        return match.address
    flag = channel.consent
    if to is None:
        for phone in contact.phones:
            if getattr(phone, flag, False):
                return phone.e164
        raise MessageRefused(
            f"{name} has no phone number that accepts {_label(channel)} messages", "no_target"
        )
    try:
        e164 = to_e164(to, contact.country or current_app.config.get("DEFAULT_COUNTRY"))
    except InvalidPhone as exc:
        raise ValidationError({"to": [str(exc)]}) from None
    match_phone = next((p for p in contact.phones if p.e164 == e164), None)
    if match_phone is None:
        raise MessageRefused(f"{to} is not a phone number of {name}", "unknown_target")
    if not getattr(match_phone, flag, False):
        raise MessageRefused(
            f"{match_phone.number} has not agreed to receive {_label(channel)} messages", "no_consent"
        )
    return match_phone.e164


# -- composing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A checked sending request (one contact or a selection)."""

    channel: Channel
    to: str | None
    body: str | None
    template: str | None
    subject: str | None
    language: str | None


def clean_request(data: Mapping[str, Any], bulk: bool = False) -> Request:
    errors: dict[str, list[str]] = {}

    def text(name: str) -> str | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            errors.setdefault(name, []).append("must be a string")
            return None
        return value

    channel: Channel | None = None
    try:
        channel = get_channel(data.get("channel"))
    except ValidationError as exc:
        errors.update(exc.errors)
    to, body, template, subject = text("to"), text("body"), text("template"), text("subject")
    language = data.get("language")
    if bulk and to is not None:
        errors.setdefault("to", []).append("is chosen per contact in a mass sending: leave it out")
    if to is not None and not to.strip():
        to = None
    if body is not None and not body.strip():
        body = None
    if (body is None) == (template is None):
        errors.setdefault("body", []).append("send either a body or a template key")
    if body is not None and len(body) > MAX_BODY:
        errors.setdefault("body", []).append(f"must be at most {MAX_BODY} characters")
    subject = subject.strip() if subject and subject.strip() else None
    if channel is not None:
        if subject and not channel.has_subject:
            errors.setdefault("subject", []).append(f"{channel.key} messages have no subject")
        if channel.has_subject and body is not None and not subject:
            errors.setdefault("subject", []).append(f"is required for {channel.key} messages")
    if subject and len(subject) > MAX_SUBJECT:
        errors.setdefault("subject", []).append(f"must be at most {MAX_SUBJECT} characters")
    if language is not None and language not in templates.LANGUAGES:
        errors.setdefault("language", []).append(f"must be one of: {', '.join(templates.LANGUAGES)}")
    if errors:
        raise ValidationError(errors)
    assert channel is not None
    if template is not None:
        templates.find_template(template, channel.key, language)  # refuses an unknown key once, up front
    return Request(channel, to, body, template, subject, language)


class _Composer:
    """Renders the message for each contact; caches what is the same for all of them."""

    def __init__(self, request: Request, user: User | None) -> None:
        from crmcore.services.fields import all_fields

        self.request = request
        self.user = user
        self.fields = all_fields()
        self._salutations: dict[str | None, dict[str, str]] = {}
        self._templates: dict[str, Any] = {}

    def language_of(self, contact: Contact) -> str:
        language = self.request.language or contact.language
        if language not in templates.LANGUAGES:
            language = current_app.config.get("DEFAULT_LANGUAGE") or "fr"
        return language

    def compose(self, contact: Contact) -> tuple[str | None, str, str]:
        """``(subject, body, language)`` for ``contact``."""
        request = self.request
        language = self.language_of(contact)
        if language not in self._salutations:
            self._salutations[language] = templates._salutations(language)
        context = templates.placeholder_context(
            contact, self.user, language, self.fields, self._salutations[language]
        )
        if request.template is not None:
            template = self._templates.get(language)
            if template is None:
                template = templates.find_template(request.template, request.channel.key, language)
                self._templates[language] = template
            subject_text, body_text, language = template.subject, template.body, template.language
        else:
            subject_text, body_text = request.subject, request.body or ""
        subject = templates.render(subject_text, context, "subject").strip() if subject_text else None
        body = templates.render(body_text, context, "body")
        if not body.strip():
            raise ValidationError({"body": ["the message is empty once its placeholders are filled in"]})
        limit = request.channel.max_length
        if limit is not None and len(body) > limit:
            raise ValidationError(
                {"body": [f"is {len(body)} characters long; {request.channel.key} allows {limit}"]}
            )
        if subject and len(subject) > MAX_SUBJECT:
            raise ValidationError({"subject": [f"must be at most {MAX_SUBJECT} characters"]})
        return subject, body, language


def _from_address(channel: Channel) -> str | None:
    if channel.target == "email":
        return current_app.config.get("MAIL_FROM") or None
    return None


def _new_message(
    contact: Contact,
    request: Request,
    target: str,
    composed: tuple[str | None, str, str],
    user: User | None,
    batch_id: str | None,
) -> Message:
    subject, body, language = composed
    now = utcnow()
    message = Message(
        contact_id=contact.id,
        direction="out",
        channel=request.channel.key,
        to_address=target,
        from_address=_from_address(request.channel),
        subject=subject,
        body=body,
        template_key=request.template,
        language=language,
        status="queued",
        idempotency_key=uuid.uuid4().hex,
        attempts=0,
        batch_id=batch_id,
        created_by_id=user.id if user else None,
        created_at=now,
        updated_at=now,
    )
    db.session.add(message)
    return message


def _prepare(
    contact: Contact, request: Request, composer: _Composer, user: User | None, batch_id: str | None = None
) -> Message:
    """Check and render one message for ``contact`` and add it to the session (not yet flushed)."""
    ensure_not_blocked(contact, f"send a {_label(request.channel)} message")
    target = resolve_target(contact, request.channel, request.to)
    return _new_message(contact, request, target, composer.compose(contact), user, batch_id)


def _after_queueing(messages: list[Message]) -> None:
    from crmcore.jobs import enqueue_delivery, is_eager

    ids = [m.id for m in messages]
    enqueue_delivery(ids)
    if is_eager() and ids:
        # The delivery ran in its own session: read what it recorded (one query).
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            db.session.scalars(
                select(Message).where(Message.id.in_(chunk)).execution_options(populate_existing=True)
            ).all()


def send_message(
    contact_id: int, data: Mapping[str, Any], user: User | None = None, source: str = "api"
) -> Message:
    """Queue one message for ``contact_id``: ``{"channel", "to"?, "body" | "template", "subject"?, "language"?}``.

    Returns the message: ``queued`` when a worker will deliver it, already ``sent``/``failed`` when
    jobs run in-process. Raises ValidationError, MessageRefused, BlockedContact, NotFound, Forbidden.
    """
    request = clean_request(data)
    with transaction():
        contact = get_contact(contact_id, user, "write")
        message = _prepare(contact, request, _Composer(request, user), user)
        db.session.flush()
    _after_queueing([message])
    return message


def preview_message(contact_id: int, data: Mapping[str, Any], user: User | None = None) -> dict[str, Any]:
    """What :func:`send_message` would send to ``contact_id`` (subject, body, language), without
    sending or checking consent; placeholders and templates are checked the same way."""
    request = clean_request(data)
    contact = get_contact(contact_id, user)
    subject, body, language = _Composer(request, user).compose(contact)
    return {"subject": subject, "body": body, "language": language}


@dataclass
class BulkOutcome:
    contact_id: int
    #: queued (or the status it already reached) or refused
    status: str
    message: Message | None = None
    reason: str | None = None
    error: str | None = None


def _reason(exc: CrmError) -> str:
    if isinstance(exc, MessageRefused):
        return exc.reason
    return {
        "BlockedContact": "blocked",
        "NotFound": "not_found",
        "Forbidden": "forbidden",
        "ValidationError": "invalid",
    }.get(type(exc).__name__, "refused")


def _describe(exc: CrmError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field}: {', '.join(messages)}" for field, messages in exc.errors.items())
    return exc.message


def send_bulk(
    contact_ids: Iterable[Any], data: Mapping[str, Any], user: User | None = None, source: str = "api"
) -> tuple[str, list[BulkOutcome]]:
    """Send one message to each contact of a selection; return ``(batch_id, outcome per contact)``.

    Each contact is checked on its own: a refused one (no consent, blocked, not visible...) is
    reported with its reason and does not stop the others. The request itself (channel, body or
    template) is checked once and refused as a whole when invalid.
    """
    ids = list(contact_ids)
    limit = _setting_int("MESSAGE_BULK_LIMIT", 5000)
    if not ids:
        raise ValidationError({"ids": ["select at least one contact"]})
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int) or i < 1]
    if bad:
        raise ValidationError({"ids": [f"must be contact ids; not: {', '.join(map(str, bad[:10]))}"]})
    ids = list(dict.fromkeys(ids))
    if len(ids) > limit:
        raise ValidationError({"ids": [f"at most {limit} contacts per mass sending (got {len(ids)})"]})
    request = clean_request(data, bulk=True)
    composer = _Composer(request, user)
    batch_id = uuid.uuid4().hex
    outcomes: list[BulkOutcome] = []
    queued: list[Message] = []
    with transaction():
        found = {
            c.id: c for c in db.session.scalars(select(Contact).where(Contact.id.in_(ids)).options(*EAGER))
        }
        blocked = set(
            db.session.scalars(
                select(ContactWarning.contact_id).where(
                    ContactWarning.contact_id.in_(ids), ContactWarning.level == "blocking"
                )
            )
        )
        for contact_id in ids:
            contact = found.get(contact_id)
            try:
                if contact is None or contact.deleted_at is not None:
                    raise NotFound(f"contact {contact_id} not found")
                access.check(contact, user, "write")
                if contact_id in blocked:
                    ensure_not_blocked(contact, f"send a {_label(request.channel)} message")
                target = resolve_target(contact, request.channel, None)
                composed = composer.compose(contact)
            except CrmError as exc:
                outcomes.append(BulkOutcome(contact_id, "refused", reason=_reason(exc), error=_describe(exc)))
                continue
            message = _new_message(contact, request, target, composed, user, batch_id)
            queued.append(message)
            outcomes.append(BulkOutcome(contact_id, "queued", message))
        db.session.flush()
    _after_queueing(queued)
    for outcome in outcomes:
        if outcome.message is not None:
            outcome.status = outcome.message.status
    return batch_id, outcomes


# -- delivery (runs in the worker) -----------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOutcome:
    #: sent (handed to the provider), failed, retry, skipped (already handled or not an outbound message)
    state: str
    retry_in: float | None = None


def _status_case(new_status: str) -> Any:
    """SQL: the new status when it is further along than the stored one, else the stored one."""
    lower = [status for status, rank in _RANK.items() if rank < _RANK[new_status]]
    if not lower:
        return Message.status
    return case((Message.status.in_(lower), new_status), else_=Message.status)


def deliver(message_id: int) -> DeliveryOutcome:
    """Claim message ``message_id``, send it through its channel and record the result.

    Safe to call any number of times, from any number of workers: only one claim succeeds, and a
    message already handed to its provider (or finished) is left alone.
    """
    now = utcnow()
    token = uuid.uuid4().hex
    lease = timedelta(seconds=_setting_int("MESSAGE_CLAIM_SECONDS", 600))
    outbound: OutboundMessage | None = None
    with transaction():
        row = db.session.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.direction == "out",
                Message.status == "queued",
                Message.handed_at.is_(None),
                or_(Message.claimed_until.is_(None), Message.claimed_until < now),
            )
            .values(
                claim_token=token, claimed_until=now + lease, attempts=Message.attempts + 1, updated_at=now
            )
            .returning(
                Message.channel,
                Message.to_address,
                Message.body,
                Message.subject,
                Message.contact_id,
                Message.idempotency_key,
                Message.from_address,
                Message.attempts,
                Message.language,
            )
            .execution_options(synchronize_session=False)
        ).first()
        if row is not None:
            outbound = OutboundMessage(
                id=message_id,
                channel=row.channel,
                to=row.to_address,
                body=row.body,
                subject=row.subject,
                contact_id=row.contact_id or 0,
                idempotency_key=row.idempotency_key,
                extra={"from": row.from_address, "attempt": row.attempts, "language": row.language},
            )
            attempt = row.attempts
        else:
            message = db.session.get(Message, message_id, populate_existing=True)
            if (
                message is not None
                and message.status == "queued"
                and message.handed_at is None
                and message.claimed_until is not None
                and message.claimed_until >= now
            ):
                # Another worker holds it: look again once its lease is over (it may have died).
                return DeliveryOutcome("retry", (message.claimed_until - now).total_seconds() + 1)
    if outbound is None:
        return DeliveryOutcome("skipped")

    channel = crm_state().channels.get(outbound.channel)
    if channel is None:
        _finish_failed(
            message_id,
            token,
            f"channel {outbound.channel!r} is not available (its plugin is disabled or not installed)",
        )
        return DeliveryOutcome("failed")
    try:
        result = channel.send(outbound)
        if not isinstance(result, SendResult):
            raise TypeError(f"channel {channel.key} returned {type(result).__name__}, expected SendResult")
    except ChannelError as exc:
        error, retryable = exc.message, exc.retryable
    except Exception as exc:  # a plugin bug or an unexpected library error: retried, then failed
        log.exception("channel %s raised while sending message %s", channel.key, message_id)
        error, retryable = f"{type(exc).__name__}: {exc}", True
    else:
        _record_sent(message_id, result)
        return DeliveryOutcome("sent")

    if retryable and attempt < max_attempts():
        delay = retry_delay(attempt)
        with transaction():
            db.session.execute(
                update(Message)
                .where(Message.id == message_id, Message.claim_token == token)
                .values(
                    claim_token=None,
                    claimed_until=None,
                    error=f"attempt {attempt} failed: {error}",
                    next_attempt_at=utcnow() + timedelta(seconds=delay),
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
        log.info("message %s: attempt %s failed (%s); retry in %ss", message_id, attempt, error, delay)
        return DeliveryOutcome("retry", delay)
    if retryable:
        error = f"gave up after {attempt} attempts: {error}"
    _finish_failed(message_id, token, error)
    return DeliveryOutcome("failed")


def _record_sent(message_id: int, result: SendResult) -> None:
    now = utcnow()
    status = result.status if result.status in _RANK else "sent"
    values: dict[str, Any] = {
        "status": _status_case(status),
        "provider_id": func.coalesce(result.provider_id, Message.provider_id),
        "handed_at": func.coalesce(Message.handed_at, now),
        "claim_token": None,
        "claimed_until": None,
        "next_attempt_at": None,
        "error": None,
        "updated_at": now,
    }
    if status == "delivered":
        values["delivered_at"] = func.coalesce(Message.delivered_at, now)
    with transaction():
        db.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def _finish_failed(message_id: int, token: str, error: str) -> None:
    with transaction():
        db.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.claim_token == token)
            .values(
                status="failed",
                error=error,
                claim_token=None,
                claimed_until=None,
                next_attempt_at=None,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )


def requeue_pending(min_age_seconds: int | None = None) -> int:
    """Hand again to the job queue every queued message nobody holds (the broker was down, a worker
    died). Returns how many were queued. Claims make this safe to run at any time."""
    from crmcore.jobs import enqueue_delivery

    age = _setting_int("MESSAGE_REQUEUE_AGE", 60) if min_age_seconds is None else min_age_seconds
    now = utcnow()
    ids = list(
        db.session.scalars(
            select(Message.id)
            .where(
                Message.direction == "out",
                Message.status == "queued",
                Message.handed_at.is_(None),
                or_(Message.claimed_until.is_(None), Message.claimed_until < now),
                or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
                Message.created_at <= now - timedelta(seconds=age),
            )
            .order_by(Message.id)
        )
    )
    db.session.rollback()
    failed = enqueue_delivery(ids)
    return len(ids) - len(failed)


# -- provider reports and inbound messages (called by channel plugins) -----------------------------


def get_message(message_id: int, user: User | None = None) -> Message:
    """A message the user may see (through its contact); NotFound otherwise."""
    message = db.session.get(Message, message_id) if isinstance(message_id, int) else None
    if message is None:
        raise NotFound(f"message {message_id} not found")
    if message.contact_id is not None:
        get_contact(message.contact_id, user, include_deleted=True)
    elif user is not None and not user.is_admin:
        raise NotFound(f"message {message_id} not found")
    return message


def find_message(channel: str, provider_id: str) -> Message | None:
    return db.session.scalar(
        select(Message).where(Message.channel == channel, Message.provider_id == provider_id).limit(1)
    )


def update_status(
    message_id: int, status: str, provider_id: str | None = None, error: str | None = None
) -> Message:
    """Record a delivery report (a provider's status callback) for outbound message ``message_id``.

    ``status``: queued, sent, delivered, failed or undelivered. A status never moves backwards
    (reports may arrive out of order); a report proves the provider has the message, so no
    worker sends it again.
    """
    if status not in OUTBOUND_STATUSES:
        raise ValidationError({"status": [f"must be one of: {', '.join(OUTBOUND_STATUSES)}"]})
    now = utcnow()
    values: dict[str, Any] = {
        "status": _status_case(status),
        "handed_at": func.coalesce(Message.handed_at, now),
        "updated_at": now,
    }
    if provider_id:
        values["provider_id"] = func.coalesce(Message.provider_id, provider_id)
    if status == "delivered":
        values["delivered_at"] = func.coalesce(Message.delivered_at, now)
    if status in ("failed", "undelivered") and error:
        values["error"] = error
    with transaction():
        message = db.session.get(Message, message_id)
        if message is None or message.direction != "out":
            raise NotFound(f"outbound message {message_id} not found")
        if provider_id and message.provider_id and message.provider_id != provider_id:
            raise ValidationError(
                {"provider_id": [f"message {message_id} is {message.provider_id}, not {provider_id}"]}
            )
        db.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    db.session.refresh(message)
    return message


def _contacts_at(channel: Channel, address: str) -> list[Contact]:
    """Live contacts owning ``address`` (an email, or a phone in any format), oldest first."""
    if channel.target == "email":
        query = select(Contact).join(ContactEmail).where(ContactEmail.address_key == address.strip().lower())
    else:
        try:
            e164 = to_e164(address, current_app.config.get("DEFAULT_COUNTRY"))
        except InvalidPhone:
            return []
        query = select(Contact).join(ContactPhone).where(ContactPhone.e164 == e164)
    query = query.where(Contact.deleted_at.is_(None)).options(*EAGER).order_by(Contact.id)
    return list(dict.fromkeys(db.session.scalars(query)))


def normalize_address(channel: Channel, address: str) -> str:
    if channel.target == "email":
        return address.strip()
    try:
        return to_e164(address, current_app.config.get("DEFAULT_COUNTRY"))
    except InvalidPhone:
        return address.strip()


def record_inbound(
    channel_key: str,
    sender: str,
    recipient: str,
    body: str,
    provider_id: str | None = None,
) -> Message:
    """Log a message received from ``sender``; it is attached to the contact owning that address or
    number (the one last written to at that number when several share it), or to none.

    Idempotent on ``provider_id``: a provider that repeats its webhook gets the same message back.
    """
    channel = get_channel(channel_key)
    with transaction():
        if provider_id:
            existing = db.session.scalar(
                select(Message).where(
                    Message.channel == channel.key,
                    Message.direction == "in",
                    Message.provider_id == provider_id,
                )
            )
            if existing is not None:
                return existing
        address = normalize_address(channel, sender)
        contacts = _contacts_at(channel, sender)
        contact_id = None
        if contacts:
            ids = [c.id for c in contacts]
            last = db.session.scalar(
                select(Message.contact_id)
                .where(Message.direction == "out", Message.to_address == address, Message.contact_id.in_(ids))
                .order_by(Message.id.desc())
                .limit(1)
            )
            contact_id = last or ids[0]
        now = utcnow()
        message = Message(
            contact_id=contact_id,
            direction="in",
            channel=channel.key,
            to_address=normalize_address(channel, recipient),
            from_address=address,
            body=body or "",
            status="received",
            provider_id=provider_id,
            idempotency_key=uuid.uuid4().hex,
            attempts=0,
            created_at=now,
            updated_at=now,
            handed_at=now,
        )
        db.session.add(message)
        db.session.flush()
    return message


def withdraw_consent(channel_key: str, address: str, source: str = "inbound") -> list[int]:
    """Remove the channel's consent from ``address`` on every contact owning it (a STOP reply).

    The change goes through the contact service, so it is versioned and recorded in the history
    as a consent change with ``source``. Returns the ids of the contacts changed.
    """
    channel = get_channel(channel_key)
    changed: list[int] = []
    with transaction():
        for contact in _contacts_at(channel, address):
            if channel.target == "email":
                wanted = address.strip().lower()
                items = [email_to_dict(e) for e in contact.emails]
                hit = [i for i in items if i["address"].lower() == wanted and i["accepts_email"]]
                for item in hit:
                    item["accepts_email"] = False
                if hit:
                    update_contact(contact.id, {"emails": items}, None, source)
                    changed.append(contact.id)
                continue
            e164 = normalize_address(channel, address)
            items = [phone_to_dict(p) for p in contact.phones]
            hit = [i for i in items if i["e164"] == e164 and i.get(channel.consent)]
            for item in hit:
                item[channel.consent] = False
            if hit:
                update_contact(contact.id, {"phones": items}, None, source)
                changed.append(contact.id)
    return changed


# -- reading ---------------------------------------------------------------------------------------


def list_messages(
    contact_id: int,
    user: User | None = None,
    channel: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Message]:
    """Messages of a contact, newest first (``before_id`` pages back)."""
    contact = get_contact(contact_id, user, include_deleted=True)
    query = select(Message).where(Message.contact_id == contact.id)
    if channel:
        query = query.where(Message.channel == channel)
    if status:
        query = query.where(Message.status == status)
    if before_id:
        query = query.where(Message.id < before_id)
    return list(db.session.scalars(query.order_by(Message.id.desc()).limit(max(1, min(limit, 500)))))


def count_messages(contact_id: int) -> int:
    return db.session.scalar(select(func.count(Message.id)).where(Message.contact_id == contact_id)) or 0


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def message_to_dict(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "contact_id": message.contact_id,
        "direction": message.direction,
        "channel": message.channel,
        "to": message.to_address,
        "from": message.from_address,
        "subject": message.subject,
        "body": message.body,
        "template": message.template_key,
        "language": message.language,
        "status": message.status,
        "error": message.error,
        "provider_id": message.provider_id,
        "attempts": message.attempts,
        "batch_id": message.batch_id,
        "created_by_id": message.created_by_id,
        "created_at": _iso(message.created_at),
        "updated_at": _iso(message.updated_at),
        "sent_at": _iso(message.handed_at) if message.direction == "out" else None,
        "delivered_at": _iso(message.delivered_at),
        "received_at": _iso(message.created_at) if message.direction == "in" else None,
    }
