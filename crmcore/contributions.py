"""Typed contributions that plugins return from hooks.

Each is a frozen dataclass validated once, when the core collects it, so a plugin mistake is
reported with the plugin's name instead of surfacing later as a broken page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from crmcore.models import Contact

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

FIELD_TYPES = (
    "text",
    "long_text",
    "integer",
    "decimal",
    "date",
    "boolean",
    "choice",
    "multi_choice",
    "url",
    "email",
    "phone",
)
FieldType = Literal[
    "text",
    "long_text",
    "integer",
    "decimal",
    "date",
    "boolean",
    "choice",
    "multi_choice",
    "url",
    "email",
    "phone",
]
ContactKind = Literal["person", "organization"]

#: A label is either one string or one string per language code, e.g. ``{"en": "Send SMS", "fr": "Envoyer un SMS"}``.
Label = str | Mapping[str, str]


class ContributionError(ValueError):
    """A contribution a plugin returned is not valid; the message says which and why."""


def _check_key(kind: str, key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ContributionError(
            f"{kind} key {key!r} must be lowercase letters, digits and underscores, starting with a letter"
        )


def _check_label(kind: str, key: str, label: Any) -> None:
    if isinstance(label, str) and label.strip():
        return
    if isinstance(label, Mapping) and label and all(isinstance(v, str) and v for v in label.values()):
        return
    raise ContributionError(f"{kind} {key!r} needs a non-empty label (a string or a {{lang: text}} mapping)")


def localize(label: Label, language: str | None = None) -> str:
    """Pick the text of a label for ``language``, falling back to English then to any language."""
    if isinstance(label, str):
        return label
    if language and language in label:
        return label[language]
    return label.get("en") or next(iter(label.values()))


@dataclass(frozen=True)
class Tab:
    """A tab on the contact page.

    ``render`` is called lazily with the contact and returns HTML (escaped by the plugin, e.g. with
    ``flask.render_template``). ``count`` is shown beside the label when not None.
    """

    key: str
    label: Label
    render: Callable[[Contact], str]
    order: int = 100
    count: int | None = None

    def __post_init__(self) -> None:
        _check_key("tab", self.key)
        _check_label("tab", self.key, self.label)
        if not callable(self.render):
            raise ContributionError(f"tab {self.key!r}: render must be callable")


@dataclass(frozen=True)
class Action:
    """An entry of the contact page's action menu (or of the list's mass-action menu).

    ``url`` is where the browser goes; with ``method="POST"`` the core renders a form posting to it
    (with the CSRF token). For mass actions the selected ids are sent as repeated ``ids`` parameters.
    """

    key: str
    label: Label
    url: str
    method: Literal["GET", "POST"] = "GET"
    icon: str | None = None
    order: int = 100
    confirm: Label | None = None

    def __post_init__(self) -> None:
        _check_key("action", self.key)
        _check_label("action", self.key, self.label)
        if self.method not in ("GET", "POST"):
            raise ContributionError(f"action {self.key!r}: method must be GET or POST")
        if not isinstance(self.url, str) or not self.url:
            raise ContributionError(f"action {self.key!r}: url must be a non-empty string")


@dataclass(frozen=True)
class MenuItem:
    """An entry of the main menu (the page header), e.g. "Commercial > Quotes".

    Give either ``endpoint`` (a Flask endpoint taking no arguments, e.g. ``"crm_quotes.index"``; the
    core checks it exists once, when the application starts) or ``url`` (a path starting with ``/``,
    or an ``http(s)://`` address). Items with the same ``section`` are grouped under one heading
    (``section_label``, or the core's label for the usual sections: ``commercial``, ``communication``,
    ``marketing``, ``accounting``, ``tools``). ``admin_only`` items are shown to administrators only:
    the target page must still check access itself.
    """

    key: str
    label: Label
    endpoint: str | None = None
    url: str | None = None
    section: str | None = None
    section_label: Label | None = None
    order: int = 100
    admin_only: bool = False

    def __post_init__(self) -> None:
        _check_key("menu item", self.key)
        _check_label("menu item", self.key, self.label)
        if (self.endpoint is None) == (self.url is None):
            raise ContributionError(f"menu item {self.key!r}: give either an endpoint or a url")
        if self.endpoint is not None and (not isinstance(self.endpoint, str) or not self.endpoint.strip()):
            raise ContributionError(f"menu item {self.key!r}: endpoint must be a non-empty string")
        if self.url is not None and not (
            isinstance(self.url, str)
            and (
                (self.url.startswith("/") and not self.url.startswith("//"))
                or self.url.startswith(("http://", "https://"))
            )
        ):
            raise ContributionError(
                f"menu item {self.key!r}: url must start with / or http(s):// (got {self.url!r})"
            )
        if self.section is not None:
            _check_key("menu section", self.section)
        if self.section_label is not None:
            _check_label("menu section", self.section or self.key, self.section_label)
        if isinstance(self.order, bool) or not isinstance(self.order, int):
            raise ContributionError(f"menu item {self.key!r}: order must be an integer")
        if not isinstance(self.admin_only, bool):
            raise ContributionError(f"menu item {self.key!r}: admin_only must be True or False")


@dataclass(frozen=True)
class FieldDef:
    """One custom field. This single definition drives validation, storage in the contact's
    ``custom`` JSON column, the API schema, the form widget and the CSV/vCard column
    (``custom.<key>`` / ``X-CRM-<KEY>``)."""

    key: str
    label: Label
    type: FieldType = "text"
    kinds: tuple[ContactKind, ...] = ("person", "organization")
    required: bool = False
    choices: tuple[str, ...] = ()
    help: Label | None = None
    max_length: int | None = None
    order: int = 100
    #: Filled in by the core: ``"admin"`` for definitions made in the admin page, else the plugin name.
    source: str = "plugin"

    def __post_init__(self) -> None:
        _check_key("field", self.key)
        _check_label("field", self.key, self.label)
        if self.type not in FIELD_TYPES:
            raise ContributionError(
                f"field {self.key!r}: type {self.type!r} is not one of {', '.join(FIELD_TYPES)}"
            )
        if not self.kinds or any(kind not in ("person", "organization") for kind in self.kinds):
            raise ContributionError(f"field {self.key!r}: kinds must be person and/or organization")
        if self.type in ("choice", "multi_choice") and not self.choices:
            raise ContributionError(f"field {self.key!r}: a {self.type} field needs choices")
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "choices", tuple(self.choices))


@dataclass(frozen=True)
class OutboundMessage:
    """What a channel's ``send`` receives: one message, already consent-checked by the core."""

    id: int
    channel: str
    to: str
    body: str
    subject: str | None
    contact_id: int
    #: Stable per message: providers that support it must use it so a retry never sends twice.
    idempotency_key: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What a channel's ``send`` returns: the provider's id and the status it reported."""

    provider_id: str | None = None
    status: Literal["queued", "sent", "delivered"] = "sent"


@dataclass(frozen=True)
class Channel:
    """A communication channel (email, SMS, WhatsApp...).

    ``target`` says whether messages go to one of the contact's emails or phones; ``consent`` is
    the consent flag that must be set on that email (``accepts_email``) or phone (``sms``,
    ``whatsapp``, ``viber``, ``calls``) before the core lets a message out. ``send`` delivers one
    message and raises :class:`crmcore.errors.ChannelError` (retryable or not) on failure.
    """

    key: str
    label: Label
    target: Literal["email", "phone"]
    consent: str
    send: Callable[[OutboundMessage], SendResult]
    has_subject: bool = False
    max_length: int | None = None

    def __post_init__(self) -> None:
        _check_key("channel", self.key)
        _check_label("channel", self.key, self.label)
        if self.target not in ("email", "phone"):
            raise ContributionError(f"channel {self.key!r}: target must be 'email' or 'phone'")
        allowed = ("accepts_email",) if self.target == "email" else ("sms", "whatsapp", "viber", "calls")
        if self.consent not in allowed:
            raise ContributionError(f"channel {self.key!r}: consent must be one of {', '.join(allowed)}")
        if not callable(self.send):
            raise ContributionError(f"channel {self.key!r}: send must be callable")


@dataclass(frozen=True)
class Problem:
    """A validation refusal from ``contact_validate``: which field (or None for the whole record) and why."""

    message: str
    field: str | None = None


@dataclass(frozen=True)
class Migrations:
    """Where a plugin keeps its Alembic history. Tables it creates must start with ``<prefix>_``."""

    directory: str
    prefix: str
