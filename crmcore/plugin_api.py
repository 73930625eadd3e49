"""The public facade for plugins: import from here and nowhere else in crmcore.

Everything listed in ``__all__`` is stable; the core may reorganise freely behind it.

    from crmcore.plugin_api import hookimpl, Tab, Action

    @hookimpl
    def contact_tabs(contact):
        return [Tab(key="invoices", label={"en": "Invoices", "fr": "Factures"}, render=render_invoices)]
"""

from __future__ import annotations

from typing import Any

import pluggy
from flask import current_app

from crmcore.contributions import (
    Action,
    Channel,
    FieldDef,
    Label,
    MenuItem,
    Migrations,
    OutboundMessage,
    Problem,
    SendResult,
    Tab,
    localize,
)
from crmcore.errors import (
    BlockedContact,
    ChannelError,
    Conflict,
    CrmError,
    Forbidden,
    NotFound,
    ValidationError,
)
from crmcore.extensions import db
from crmcore.models import Contact, User
from crmcore.models.base import JSONType, UTCDateTime, utcnow
from crmcore.services.access import can as can_access
from crmcore.services.contacts import (
    create_contact,
    create_contacts,
    ensure_not_blocked,
    get_contact,
    set_status,
    update_contact,
)
from crmcore.services.history import record as record_history
from crmcore.services.message_templates import template_choices as message_template_choices
from crmcore.services.messaging import (
    MessageRefused,
    find_message,
    get_message,
    message_to_dict,
    record_inbound,
    send_bulk,
    send_message,
    withdraw_consent,
)
from crmcore.services.messaging import update_status as update_message_status
from crmcore.services.notes import add_note, list_notes
from crmcore.services.serialize import contact_to_dict
from crmcore.services.transactions import savepoint, transaction

hookimpl = pluggy.HookimplMarker("crm")


def get_contact_for(contact_id: int, mode: str = "read") -> Contact:
    """The contact if the current user may read (or ``mode="write"``) it; NotFound/Forbidden otherwise.

    Plugin routes use this so every route obeys the same access rules as the core.
    """
    return get_contact(contact_id, current_user(), mode)  # type: ignore[arg-type]


def current_user() -> User | None:
    """The user of the current request, or None outside a request (CLI, jobs)."""
    from crmcore.auth import request_user

    return request_user()


def run_migrations() -> None:
    """The body of a plugin's ``migrations/env.py``."""
    from crmcore.migrating import run_env

    run_env()


def setting(name: str, default: Any = None) -> Any:
    """A configuration value (``CRM_<NAME>`` in the environment)."""
    return current_app.config.get(name, default)


def public(view: Any) -> Any:
    """Mark a plugin route as reachable without signing in (webhooks): it must check its caller itself,
    e.g. with the provider's signature."""
    from crmcore.auth import public as mark_public

    return mark_public(view)


__all__ = [
    "Action",
    "BlockedContact",
    "Channel",
    "ChannelError",
    "Conflict",
    "Contact",
    "CrmError",
    "FieldDef",
    "Forbidden",
    "MessageRefused",
    "JSONType",
    "Label",
    "MenuItem",
    "Migrations",
    "NotFound",
    "OutboundMessage",
    "Problem",
    "SendResult",
    "Tab",
    "UTCDateTime",
    "User",
    "ValidationError",
    "add_note",
    "can_access",
    "contact_to_dict",
    "create_contact",
    "create_contacts",
    "current_user",
    "db",
    "ensure_not_blocked",
    "find_message",
    "get_contact",
    "get_contact_for",
    "get_message",
    "hookimpl",
    "list_notes",
    "localize",
    "message_template_choices",
    "message_to_dict",
    "public",
    "record_history",
    "record_inbound",
    "run_migrations",
    "savepoint",
    "send_bulk",
    "send_message",
    "set_status",
    "setting",
    "transaction",
    "update_contact",
    "update_message_status",
    "utcnow",
    "withdraw_consent",
]
