"""Hook implementations of crm-sms. Plugins import from ``crmcore.plugin_api`` only.

Channels ``sms`` and ``whatsapp`` (Twilio), the "Send SMS" action and mass action, the webhooks
and compose page (views.py), and the plugin's own tables (models.py, migrations/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import url_for

from crm_sms import models  # noqa: F401  (the sms_ tables join the metadata)
from crm_sms.provider import send_sms, send_whatsapp
from crm_sms.views import bp
from crmcore.plugin_api import Action, Channel, Contact, Migrations, hookimpl

#: Twilio's limit for one message body.
MAX_LENGTH = 1600


@hookimpl
def register_channels() -> list[Channel]:
    return [
        Channel(
            key="sms",
            label={"en": "SMS", "fr": "SMS"},
            target="phone",
            consent="sms",
            send=send_sms,
            max_length=MAX_LENGTH,
        ),
        Channel(
            key="whatsapp",
            label={"en": "WhatsApp", "fr": "WhatsApp"},
            target="phone",
            consent="whatsapp",
            send=send_whatsapp,
            max_length=MAX_LENGTH,
        ),
    ]


@hookimpl
def register_blueprints() -> list[Any]:
    return [bp]


@hookimpl
def register_migrations() -> Migrations:
    return Migrations(directory=str(Path(__file__).parent / "migrations"), prefix="sms")


@hookimpl
def contact_actions(contact: Contact) -> list[Action]:
    if not contact.phones:
        return []
    return [
        Action(
            key="send_sms",
            label={"fr": "Envoyer un SMS", "en": "Send SMS"},
            url=url_for("crm_sms.compose", channel="sms", ids=contact.id),
            icon="sms",
            order=41,
        )
    ]


@hookimpl
def register_mass_actions() -> list[Action]:
    return [
        Action(
            key="send_sms",
            label={"fr": "Envoyer un SMS", "en": "Send SMS"},
            url=url_for("crm_sms.compose", channel="sms"),
            icon="sms",
            order=41,
        )
    ]
