"""Messages: send to a contact or a selection, the message log, and message templates.

* ``POST /api/v1/contacts/{id}/messages``: 201 when delivered in-process, 202 when queued for a worker;
  a refusal is a 4xx saying why (422 with ``reason``, 409 for a blocking warning).
* ``GET /api/v1/contacts/{id}/messages``: the contact's messages, newest first.
* ``POST /api/v1/messages/bulk``: one message per selected contact, outcome per contact.
* ``/api/v1/message-templates``: templates per channel and language.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from crmcore.api.schemas import MAX_INT, Id, IsoDateTime, Text
from crmcore.auth import request_user
from crmcore.services import message_templates as templates
from crmcore.services import messaging

SOURCE = "api"

blp = Blueprint(
    "messages",
    __name__,
    url_prefix="/api/v1",
    description="Messages: send (email, SMS, WhatsApp...) to a contact or a selection; the message log",
)
templates_blp = Blueprint(
    "message_templates",
    __name__,
    url_prefix="/api/v1/message-templates",
    description="Message templates with placeholders, per channel and language",
)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class SendSchema(_Strict):
    channel = Text(63, required=True, metadata={"description": "A channel key: email, sms, whatsapp..."})
    to = Text(
        254,
        metadata={
            "description": "One of the contact's addresses or phones; default: the first one with consent"
        },
    )
    body = fields.String(metadata={"description": "The text; placeholders such as {{ contact.first_name }}"})
    template = Text(63, metadata={"description": "A template key instead of a body"})
    subject = Text(300, metadata={"description": "Email subject (channels with a subject)"})
    language = fields.String(validate=validate.OneOf(templates.LANGUAGES))


class BulkSendSchema(SendSchema):
    ids = fields.List(Id(), required=True, validate=validate.Length(min=1))


class MessageSchema(Schema):
    id = fields.Integer()
    contact_id = fields.Integer(allow_none=True)
    direction = fields.String(metadata={"description": "out or in"})
    channel = fields.String()
    to = fields.String()
    from_ = fields.String(attribute="from", data_key="from", allow_none=True)
    subject = fields.String(allow_none=True)
    body = fields.String()
    template = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    status = fields.String(metadata={"description": ", ".join(messaging.STATUSES)})
    error = fields.String(allow_none=True)
    provider_id = fields.String(allow_none=True)
    attempts = fields.Integer()
    batch_id = fields.String(allow_none=True)
    created_by_id = fields.Integer(allow_none=True)
    created_at = IsoDateTime()
    updated_at = IsoDateTime()
    sent_at = IsoDateTime(allow_none=True)
    delivered_at = IsoDateTime(allow_none=True)
    received_at = IsoDateTime(allow_none=True)


class MessageListArgs(Schema):
    channel = Text(63)
    status = fields.String(validate=validate.OneOf(messaging.STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    before_id = fields.Integer(validate=validate.Range(min=1, max=MAX_INT))


class BulkOutcomeSchema(Schema):
    contact_id = fields.Integer()
    status = fields.String(metadata={"description": "queued, sent, failed... or refused"})
    reason = fields.String(
        allow_none=True,
        metadata={
            "description": "when refused: do_not_email, no_consent, no_target, blocked, not_found, forbidden, invalid"
        },
    )
    error = fields.String(allow_none=True)
    message = fields.Nested(MessageSchema, allow_none=True)


class BulkResultSchema(Schema):
    batch_id = fields.String()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    results = fields.List(fields.Nested(BulkOutcomeSchema))


class TemplateSchema(_Strict):
    id = fields.Integer(dump_only=True)
    key = Text(63, required=True)
    channel = Text(63, required=True)
    language = fields.String(required=True, validate=validate.OneOf(templates.LANGUAGES))
    name = Text(200)
    subject = Text(300, allow_none=True)
    body = Text(templates.MAX_BODY, required=True)
    created_at = IsoDateTime(dump_only=True)
    updated_at = IsoDateTime(dump_only=True)


class TemplatePatchSchema(_Strict):
    key = Text(63)
    channel = Text(63)
    language = fields.String(validate=validate.OneOf(templates.LANGUAGES))
    name = Text(200)
    subject = Text(300, allow_none=True)
    body = Text(templates.MAX_BODY)


class TemplateListArgs(Schema):
    channel = Text(63)
    key = Text(63)
    language = fields.String(validate=validate.OneOf(templates.LANGUAGES))


def _status_code(messages: list[Any]) -> int:
    """201 when every message reached its outcome in-process, 202 when some wait for a worker."""
    return 202 if any(m.status == "queued" and m.handed_at is None for m in messages) else 201


@blp.route("/contacts/<id:contact_id>/messages")
class ContactMessages(MethodView):
    @blp.arguments(MessageListArgs, location="query")
    @blp.response(200, MessageSchema(many=True))
    def get(self, args: dict[str, Any], contact_id: int) -> Any:
        """The contact's messages, sent and received, newest first (``before_id`` pages back)."""
        items = messaging.list_messages(contact_id, request_user(), **args)
        return [messaging.message_to_dict(m) for m in items]

    @blp.arguments(SendSchema)
    @blp.response(201, MessageSchema)
    @blp.alt_response(202, schema=MessageSchema, description="Queued: a worker delivers it")
    def post(self, data: dict[str, Any], contact_id: int) -> Any:
        """Send a message to the contact (``body`` or ``template``); consent and warnings are checked.

        A refusal answers 422 with ``reason`` (do_not_email, no_consent, unknown_target, no_target)
        and the field at fault, or 409 when the contact has a blocking warning.
        """
        message = messaging.send_message(contact_id, data, request_user(), SOURCE)
        return messaging.message_to_dict(message), _status_code([message])


@blp.route("/messages/<id:message_id>")
@blp.response(200, MessageSchema)
def get_message(message_id: int) -> Any:
    """One message."""
    return messaging.message_to_dict(messaging.get_message(message_id, request_user()))


@blp.route("/messages/bulk", methods=["POST"])
@blp.arguments(BulkSendSchema)
@blp.response(200, BulkResultSchema)
def bulk(data: dict[str, Any]) -> Any:
    """Send one message to each contact of ``ids`` (``to`` is chosen per contact: the first with consent).

    Every contact gets an outcome: its message, or ``refused`` with a reason; refusals do not stop
    the others. An invalid request (unknown channel, no body...) is refused as a whole (422).
    """
    ids = data.pop("ids")
    batch_id, outcomes = messaging.send_bulk(ids, data, request_user(), SOURCE)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return {
        "batch_id": batch_id,
        "counts": counts,
        "results": [
            {
                "contact_id": o.contact_id,
                "status": o.status,
                "reason": o.reason,
                "error": o.error,
                "message": messaging.message_to_dict(o.message) if o.message is not None else None,
            }
            for o in outcomes
        ],
    }


@templates_blp.route("")
class Templates(MethodView):
    @templates_blp.arguments(TemplateListArgs, location="query")
    @templates_blp.response(200, TemplateSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Every template (filter by ``channel``, ``key``, ``language``)."""
        return [templates.template_to_dict(t) for t in templates.list_templates(**args)]

    @templates_blp.arguments(TemplateSchema)
    @templates_blp.response(201, TemplateSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a template (admins). Placeholders: ``{{ contact.first_name }}``, ``{{ custom.<key> }}``,
        ``{{ sender.name }}``...; an unknown one is refused with its name."""
        return templates.template_to_dict(templates.create_template(data, request_user()))


@templates_blp.route("/<id:template_id>")
class TemplateItem(MethodView):
    @templates_blp.response(200, TemplateSchema)
    def get(self, template_id: int) -> Any:
        return templates.template_to_dict(templates.get_template(template_id))

    @templates_blp.arguments(TemplatePatchSchema)
    @templates_blp.response(200, TemplateSchema)
    def patch(self, data: dict[str, Any], template_id: int) -> Any:
        """Change a template (admins)."""
        return templates.template_to_dict(templates.update_template(template_id, data, request_user()))

    @templates_blp.response(204)
    def delete(self, template_id: int) -> None:
        """Delete a template (admins); messages already sent keep their text."""
        templates.delete_template(template_id, request_user())


class PreviewSchema(SendSchema):
    contact_id = Id(required=True)


@templates_blp.route("/preview", methods=["POST"])
@templates_blp.arguments(PreviewSchema)
@templates_blp.response(200)
def preview(data: dict[str, Any]) -> Any:
    """Render a body/subject (or a template key) for one contact without sending or checking consent:
    ``{"contact_id", "channel", "body" | "template", "subject"?, "language"?}``."""
    contact_id = data.pop("contact_id")
    return messaging.preview_message(contact_id, data, request_user())
