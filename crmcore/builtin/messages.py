"""Built-in plugin: the Messages tab on the contact page, the compose page of built-in channels and
the "Communication > Message templates" entry of the main menu (administrators).

The compose page (``/messages/compose?channel=email&ids=<id>...``) sends to one contact (choice of
address) or to a selection (each contact's first address with consent) through the messaging service.
Its template is chosen in a list of the templates of the channel; "Preview" shows what the first
contact would receive, without sending.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from crmcore.plugin_api import (
    Contact,
    CrmError,
    MenuItem,
    Tab,
    current_user,
    hookimpl,
    localize,
    message_template_choices,
)

bp = Blueprint("crm_messages", __name__, url_prefix="/messages")


def _render(contact: Contact) -> str:
    from crmcore.services.messaging import list_messages

    return render_template(
        "builtin/messages_tab.html", contact=contact, messages=list_messages(contact.id, limit=100)
    )


@hookimpl
def contact_tabs(contact: Contact) -> list[Tab]:
    from crmcore.services.messaging import count_messages

    return [
        Tab(
            key="messages",
            label={"en": "Messages", "fr": "Messages"},
            render=_render,
            order=30,
            count=count_messages(contact.id),
        )
    ]


@hookimpl
def register_blueprints() -> list[Blueprint]:
    return [bp]


@hookimpl
def register_menu_items() -> list[MenuItem]:
    return [
        MenuItem(
            key="message_templates",
            label={"en": "Message templates", "fr": "Modèles de messages"},
            endpoint="admin_pages.message_templates_page",
            section="communication",
            order=50,
            admin_only=True,
        )
    ]


def _ids() -> list[int]:
    values = request.values.getlist("ids")
    return [int(v) for v in values if v.isdigit()]


@bp.route("/compose", methods=["GET", "POST"])
def compose() -> Any:
    from crmcore.services import messaging
    from crmcore.services.contacts import get_contact

    user = current_user()
    channel = messaging.get_channel(request.values.get("channel"))
    ids = _ids()
    contacts = []
    for contact_id in ids[:20]:
        try:
            contacts.append(get_contact(contact_id, user))
        except CrmError:
            continue
    language = request.values.get("lang")
    context: dict[str, Any] = {
        "channel": channel,
        "channel_label": localize(channel.label, language),
        "ids": ids,
        "contacts": contacts,
        "form": request.form,
        "errors": {},
        "message": None,
        "outcomes": None,
        "preview": None,
        "templates": message_template_choices(channel.key, language),
    }
    status = 200
    if request.method == "POST":
        data = {
            "channel": channel.key,
            "body": request.form.get("body") or None,
            "template": request.form.get("template") or None,
            "subject": request.form.get("subject") or None,
        }
        try:
            if request.form.get("action") == "preview":
                context["preview"] = _preview(ids, contacts, data, user)
            elif len(ids) == 1:
                data["to"] = request.form.get("to") or None
                context["message"] = messaging.send_message(ids[0], data, user, "ui")
            else:
                _batch, context["outcomes"] = messaging.send_bulk(ids, data, user, "ui")
        except CrmError as exc:
            context["errors"] = getattr(exc, "errors", None) or {"_record": [exc.message]}
            status = exc.status
    return render_template("builtin/compose.html", **context), status


def _preview(ids: list[int], contacts: list[Contact], data: dict[str, Any], user: Any) -> dict[str, Any]:
    """What the first contact (the chosen one) would receive; nothing is sent, consent is not checked."""
    from crmcore.plugin_api import ValidationError
    from crmcore.services import messaging

    if not contacts:
        raise ValidationError({"ids": ["select at least one contact"]})
    preview = messaging.preview_message(contacts[0].id, data, user)
    return {**preview, "contact": contacts[0], "others": len(ids) - 1}
