"""Built-in plugin: the Messages tab on the contact page and the compose page of built-in channels.

The compose page (``/messages/compose?channel=email&ids=<id>...``) sends to one contact (choice of
address) or to a selection (each contact's first address with consent) through the messaging service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from crmcore.plugin_api import Contact, CrmError, Tab, current_user, hookimpl, localize

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
            if len(ids) == 1:
                data["to"] = request.form.get("to") or None
                context["message"] = messaging.send_message(ids[0], data, user, "ui")
            else:
                _batch, context["outcomes"] = messaging.send_bulk(ids, data, user, "ui")
        except CrmError as exc:
            context["errors"] = getattr(exc, "errors", None) or {"_record": [exc.message]}
            status = exc.status
    return render_template("builtin/compose.html", **context), status
