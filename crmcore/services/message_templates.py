"""Message templates: per channel and language (fr, en), with placeholders rendered by Jinja's sandbox.

Placeholders: ``{{ contact.<field> }}`` (first_name, last_name, name, display_name, salutation,
number, email, phone, organization, job_title...), ``{{ custom.<key> }}`` (custom fields) and
``{{ sender.name }}`` / ``{{ sender.email }}``. An unknown placeholder is refused when the template
is saved, with its name; an empty value renders as nothing.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from flask import current_app
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from crmcore.contributions import Channel
from crmcore.errors import Forbidden, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, MessageTemplate, User, utcnow
from crmcore.services.transactions import transaction
from crmcore.state import crm_state

LANGUAGES = ("fr", "en")
_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
MAX_BODY = 20000
MAX_SUBJECT = 300

#: The contact placeholders, besides ``email``, ``phone`` and ``organization``.
CONTACT_FIELDS = (
    "id",
    "number",
    "kind",
    "salutation",
    "first_name",
    "last_name",
    "name",
    "display_name",
    "job_title",
    "department",
    "birthday",
    "origin",
    "website",
    "language",
    "country",
    "status",
    "role",
)
CONTACT_PLACEHOLDERS = (*CONTACT_FIELDS, "email", "phone", "organization")

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=512)
def _compile(text: str) -> Any:
    return _ENV.from_string(text)


def render(text: str, context: dict[str, Any], field: str = "body") -> str:
    """Render ``text`` with ``context``; a syntax error or unknown placeholder is a ValidationError on ``field``."""
    try:
        return _compile(text).render(context)
    except TemplateSyntaxError as exc:
        raise ValidationError({field: [f"line {exc.lineno}: {exc.message}"]}) from None
    except UndefinedError as exc:
        raise ValidationError({field: [f"unknown placeholder: {exc.message}"]}) from None
    except TemplateError as exc:
        raise ValidationError({field: [f"cannot be rendered: {exc}"]}) from None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _salutations(language: str | None) -> dict[str, str]:
    from crmcore.services.lookups import values

    return {v.key: (v.label_fr if language == "fr" else v.label_en) for v in values("salutation")}


def sender_placeholders(user: User | None) -> dict[str, str]:
    if user is not None:
        return {"name": user.display_name, "email": user.email}
    config = current_app.config
    return {"name": _text(config.get("MAIL_FROM_NAME")), "email": _text(config.get("MAIL_FROM"))}


def placeholder_context(
    contact: Contact,
    user: User | None,
    language: str | None = None,
    fields: dict[str, Any] | None = None,
    salutations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What a template sees for ``contact``, sent by ``user``."""
    if fields is None:
        from crmcore.services.fields import all_fields

        fields = all_fields()
    values = {name: _text(getattr(contact, name, None)) for name in CONTACT_FIELDS}
    if contact.birthday:
        values["birthday"] = contact.birthday.isoformat()
    if contact.salutation:
        labels = salutations if salutations is not None else _salutations(language)
        values["salutation"] = labels.get(contact.salutation, contact.salutation)
    email = contact.primary_email
    values["email"] = email.address if email else ""
    values["phone"] = contact.phones[0].number if contact.phones else ""
    values["organization"] = contact.organization.display_name if contact.organization_id else ""
    custom = {key: "" for key in fields}
    custom.update({key: _text(value) for key, value in (contact.custom or {}).items()})
    return {"contact": values, "custom": custom, "sender": sender_placeholders(user)}


def sample_context() -> dict[str, Any]:
    """Every known placeholder with an empty value: rendering against it finds unknown ones."""
    from crmcore.services.fields import all_fields

    return {
        "contact": dict.fromkeys(CONTACT_PLACEHOLDERS, ""),
        "custom": dict.fromkeys(all_fields(), ""),
        "sender": {"name": "", "email": ""},
    }


# -- CRUD ------------------------------------------------------------------------------------------


def _require_admin(user: User | None) -> None:
    if user is not None and not user.is_admin:
        raise Forbidden("only administrators manage message templates")


def _channel(key: str) -> Channel | None:
    return crm_state().channels.get(key)


def _clean(data: dict[str, Any], current: MessageTemplate | None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    merged = {
        "key": current.key if current else None,
        "channel": current.channel if current else None,
        "language": current.language if current else None,
        "name": current.name if current else "",
        "subject": current.subject if current else None,
        "body": current.body if current else None,
    }
    merged.update({k: v for k, v in data.items() if k in merged})
    key = (merged["key"] or "").strip()
    if not _KEY.match(key):
        errors.setdefault("key", []).append(
            "is required: lowercase letters, digits, - and _, starting with a letter (at most 63)"
        )
    channel = _channel(merged["channel"] or "")
    if channel is None:
        known = ", ".join(sorted(crm_state().channels)) or "none"
        errors.setdefault("channel", []).append(f"unknown channel {merged['channel']!r} (available: {known})")
    if merged["language"] not in LANGUAGES:
        errors.setdefault("language", []).append(f"must be one of: {', '.join(LANGUAGES)}")
    name = (merged["name"] or "").strip()
    if len(name) > 200:
        errors.setdefault("name", []).append("must be at most 200 characters")
    subject = (merged["subject"] or "").strip() or None
    if channel is not None and channel.has_subject and not subject:
        errors.setdefault("subject", []).append(f"is required for {channel.key} templates")
    if channel is not None and not channel.has_subject and subject:
        errors.setdefault("subject", []).append(f"{channel.key} messages have no subject")
    if subject and len(subject) > MAX_SUBJECT:
        errors.setdefault("subject", []).append(f"must be at most {MAX_SUBJECT} characters")
    body = merged["body"] or ""
    if not body.strip():
        errors.setdefault("body", []).append("is required")
    elif len(body) > MAX_BODY:
        errors.setdefault("body", []).append(f"must be at most {MAX_BODY} characters")
    if not errors:
        sample = sample_context()
        for field, text in (("subject", subject), ("body", body)):
            if text:
                try:
                    render(text, sample, field)
                except ValidationError as exc:
                    for path, messages in exc.errors.items():
                        errors.setdefault(path, []).extend(messages)
    if not errors:
        clash = db.session.scalar(
            select(MessageTemplate.id).where(
                MessageTemplate.key == key,
                MessageTemplate.channel == merged["channel"],
                MessageTemplate.language == merged["language"],
            )
        )
        if clash is not None and (current is None or clash != current.id):
            errors["key"] = [
                f"a template {key!r} for {merged['channel']} in {merged['language']} already exists (id {clash})"
            ]
    if errors:
        raise ValidationError(errors)
    return {**merged, "key": key, "name": name, "subject": subject, "body": body}


def list_templates(
    channel: str | None = None, key: str | None = None, language: str | None = None
) -> list[MessageTemplate]:
    query = select(MessageTemplate)
    if channel:
        query = query.where(MessageTemplate.channel == channel)
    if key:
        query = query.where(MessageTemplate.key == key)
    if language:
        query = query.where(MessageTemplate.language == language)
    order = (MessageTemplate.key, MessageTemplate.channel, MessageTemplate.language)
    return list(db.session.scalars(query.order_by(*order)))


def template_choices(channel: str, language: str | None = None) -> list[dict[str, Any]]:
    """The templates a compose form offers for ``channel``, one per key:
    ``{"key", "name" (in ``language`` when that version has one), "languages": [...]}``, by key."""
    choices: dict[str, dict[str, Any]] = {}
    for row in list_templates(channel=channel):
        entry = choices.setdefault(row.key, {"key": row.key, "name": "", "languages": []})
        entry["languages"].append(row.language)
        if row.name and (not entry["name"] or row.language == language):
            entry["name"] = row.name
    return list(choices.values())


def get_template(template_id: int) -> MessageTemplate:
    template = db.session.get(MessageTemplate, template_id)
    if template is None:
        raise NotFound(f"message template {template_id} not found")
    return template


def create_template(data: dict[str, Any], user: User | None = None) -> MessageTemplate:
    _require_admin(user)
    with transaction():
        clean = _clean(data, None)
        template = MessageTemplate(**clean, created_at=utcnow(), updated_at=utcnow())
        db.session.add(template)
        db.session.flush()
    return template


def update_template(template_id: int, data: dict[str, Any], user: User | None = None) -> MessageTemplate:
    _require_admin(user)
    with transaction():
        template = get_template(template_id)
        clean = _clean(data, template)
        for field, value in clean.items():
            setattr(template, field, value)
        template.updated_at = utcnow()
    return template


def delete_template(template_id: int, user: User | None = None) -> None:
    _require_admin(user)
    with transaction():
        db.session.delete(get_template(template_id))


def find_template(key: str, channel: str, language: str | None) -> MessageTemplate:
    """The template ``key`` for ``channel`` in ``language``, else the default language, else any."""
    rows = {
        row.language: row
        for row in db.session.scalars(
            select(MessageTemplate).where(MessageTemplate.key == key, MessageTemplate.channel == channel)
        )
    }
    if not rows:
        raise ValidationError({"template": [f"no template {key!r} for the {channel} channel"]})
    default = current_app.config.get("DEFAULT_LANGUAGE") or "fr"
    for wanted in (language, default, "en", "fr"):
        if wanted in rows:
            return rows[wanted]
    return next(iter(rows.values()))


def template_to_dict(template: MessageTemplate) -> dict[str, Any]:
    return {
        "id": template.id,
        "key": template.key,
        "channel": template.channel,
        "language": template.language,
        "name": template.name,
        "subject": template.subject,
        "body": template.body,
        "created_at": template.created_at.isoformat(),
        "updated_at": template.updated_at.isoformat(),
    }
