"""Marshmallow schemas of the REST API. Types and sizes are checked here; meaning in the services."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields, pre_load, validate

from crmcore.services.serialize import READ_ONLY

MAX_INT = 2**31 - 1
Id = lambda **kw: fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_INT), **kw)  # noqa: E731
#: An id in a query string: the text "42" is the number 42.
QueryId = lambda **kw: fields.Integer(validate=validate.Range(min=1, max=MAX_INT), **kw)  # noqa: E731


def Text(max_length: int, **kw: Any) -> fields.String:  # noqa: N802 - reads like a field type
    return fields.String(validate=validate.Length(max=max_length), **kw)


class IsoDate(fields.Date):
    """A date; values already in ISO form (the services' JSON shape) are dumped as they are."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value if isinstance(value, str) else super()._serialize(value, attr, obj, **kwargs)


class IsoDateTime(fields.DateTime):
    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return value if isinstance(value, str) else super()._serialize(value, attr, obj, **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class EmailSchema(StrictSchema):
    address = Text(254, required=True)
    label = fields.String(validate=validate.OneOf(("work", "home", "other")))
    primary = fields.Boolean()
    accepts_email = fields.Boolean()


class PhoneSchema(StrictSchema):
    number = Text(60, required=True)
    e164 = fields.String(dump_only=True)
    type = Text(40)
    sms = fields.Boolean()
    whatsapp = fields.Boolean()
    viber = fields.Boolean()
    calls = fields.Boolean()

    @pre_load
    def drop_computed(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "e164"}
        return data


class AddressSchema(StrictSchema):
    kind = fields.String(validate=validate.OneOf(("main", "billing", "shipping", "other", "personal")))
    street = Text(300, allow_none=True)
    street2 = Text(300, allow_none=True)
    postal_code = Text(20, allow_none=True)
    city = Text(120, allow_none=True)
    region = Text(120, allow_none=True)
    country = Text(2, allow_none=True)


class ContactSchema(StrictSchema):
    """A contact. On input every field is optional (PATCH); read-only fields sent back are ignored."""

    id = fields.Integer(dump_only=True)
    number = fields.String(dump_only=True, metadata={"description": "Generated, e.g. C-000042"})
    kind = fields.String(validate=validate.OneOf(("person", "organization")))
    salutation = Text(40, allow_none=True)
    first_name = Text(200, allow_none=True)
    last_name = Text(200, allow_none=True)
    name = Text(300, allow_none=True, metadata={"description": "Organization name"})
    display_name = fields.String(dump_only=True)
    job_title = Text(200, allow_none=True)
    department = Text(200, allow_none=True)
    birthday = IsoDate(allow_none=True)
    origin = Text(60, allow_none=True)
    description = Text(20000, allow_none=True)
    website = Text(500, allow_none=True)
    social = fields.Dict(keys=Text(30), values=Text(500, allow_none=True))
    language = Text(8, allow_none=True)
    country = Text(2, allow_none=True)
    external_id = Text(255, allow_none=True)
    status = fields.String(validate=validate.OneOf(("prospect", "customer", "user")))
    is_supplier = fields.Boolean()
    emails = fields.List(fields.Nested(EmailSchema), validate=validate.Length(max=50))
    phones = fields.List(fields.Nested(PhoneSchema), validate=validate.Length(max=50))
    addresses = fields.List(fields.Nested(AddressSchema), validate=validate.Length(max=20))
    organization_id = Id(allow_none=True)
    role = Text(60, allow_none=True)
    reports_to_id = Id(allow_none=True)
    tags = fields.List(Text(80), validate=validate.Length(max=100))
    custom = fields.Dict(
        keys=Text(63),
        values=fields.Raw(allow_none=True),
        metadata={"description": "Custom fields by key; see GET /api/v1/custom-fields"},
    )
    owners = fields.List(Id(), validate=validate.Length(max=50))
    team_id = Id(allow_none=True)
    visibility = fields.String(validate=validate.OneOf(("private", "public_read", "public_write")))
    do_not_email = fields.Boolean()
    notify_owners = fields.Boolean()
    version = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_INT),
        metadata={"description": "Send back the version you read: an old one gets 409"},
    )
    created_at = IsoDateTime(dump_only=True)
    updated_at = IsoDateTime(dump_only=True)

    @pre_load
    def drop_read_only(self, data: Any, **_: Any) -> Any:
        # Clients often send back what they read; computed fields are ignored rather than refused.
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in READ_ONLY}
        return data


class ContactBatchSchema(StrictSchema):
    """Contacts to create at once (``POST /api/v1/contacts/batch``): all are created, or none."""

    items = fields.List(fields.Nested(ContactSchema), required=True)


class ContactBatchResultSchema(Schema):
    items = fields.List(fields.Nested(ContactSchema))


class ContactPageSchema(Schema):
    items = fields.List(fields.Nested(ContactSchema))
    next_cursor = fields.String(allow_none=True)
    limit = fields.Integer()


class ContactListArgs(Schema):
    class Meta:
        unknown = EXCLUDE  # custom.<key> filters are read separately

    q = Text(200, metadata={"description": "Names, emails, phone digits in any format, number, organization"})
    kind = fields.String(validate=validate.OneOf(("person", "organization")))
    status = fields.String(validate=validate.OneOf(("prospect", "customer", "user", "supplier")))
    tag = Text(80)
    owner = QueryId()
    organization_id = QueryId()
    updated_since = fields.AwareDateTime(default_timezone=None)
    deleted = fields.Boolean(load_default=False)
    sort = fields.String(
        load_default="name",
        validate=validate.OneOf(
            ("name", "-name", "number", "-number", "created_at", "-created_at", "updated_at", "-updated_at")
        ),
    )
    limit = fields.Integer(validate=validate.Range(min=1, max=500))
    cursor = Text(500)


class HistoryEntrySchema(Schema):
    id = fields.Integer()
    action = fields.String()
    field = fields.String(allow_none=True)
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)
    user_id = fields.Integer(allow_none=True)
    user = fields.String(allow_none=True)
    source = fields.String()
    at = fields.String()
    revision = fields.Integer(allow_none=True)


class NoteSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    kind = fields.String(load_default="internal", validate=validate.OneOf(("internal", "customer")))
    body = Text(20000, required=True)
    author_id = fields.Integer(dump_only=True, allow_none=True)
    author = fields.String(dump_only=True, allow_none=True)
    created_at = fields.String(dump_only=True)
    updated_at = fields.String(dump_only=True)


class NotePatchSchema(StrictSchema):
    kind = fields.String(validate=validate.OneOf(("internal", "customer")))
    body = Text(20000)


class WarningSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    level = fields.String(load_default="info", validate=validate.OneOf(("info", "blocking")))
    message = Text(500, required=True)
    created_at = fields.DateTime(dump_only=True)


class StatusSchema(StrictSchema):
    status = fields.String(validate=validate.OneOf(("prospect", "customer", "user")))
    is_supplier = fields.Boolean()


class CopyAddressSchema(StrictSchema):
    to = fields.String(required=True, validate=validate.OneOf(("billing", "shipping", "other", "personal")))


class TagSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    name = Text(80, required=True)
    contacts = fields.Integer(dump_only=True)


class TagMergeSchema(StrictSchema):
    source_ids = fields.List(Id(), required=True, validate=validate.Length(min=1, max=1000))
    target_id = Id(required=True)


class CustomFieldSchema(StrictSchema):
    key = Text(63, required=True)
    label_en = Text(120, required=True)
    label_fr = Text(120)
    type = fields.String(required=True)
    kinds = fields.List(
        fields.String(validate=validate.OneOf(("person", "organization"))),
        validate=validate.Length(min=1, max=2),
    )
    required = fields.Boolean()
    choices = fields.List(Text(120), validate=validate.Length(max=200))
    max_length = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=20000))
    help = Text(1000, allow_none=True)
    position = fields.Integer(strict=True, validate=validate.Range(min=0, max=100000))
    source = fields.String(dump_only=True)


class CustomFieldPatchSchema(CustomFieldSchema):
    key = Text(63, dump_only=True)
    label_en = Text(120)
    type = fields.String()


class LookupSchema(StrictSchema):
    key = Text(60)
    label_en = Text(120, required=True)
    label_fr = Text(120)
    position = fields.Integer(strict=True, validate=validate.Range(min=0, max=100000))
    builtin = fields.Boolean(dump_only=True)


class LookupPatchSchema(LookupSchema):
    key = Text(60, dump_only=True)
    label_en = Text(120)


class PluginSchema(Schema):
    name = fields.String()
    version = fields.String(allow_none=True)
    status = fields.String()
    builtin = fields.Boolean()
    error = fields.String(allow_none=True)
    hooks = fields.List(fields.String())
    distribution = fields.String(allow_none=True)
    incidents = fields.List(fields.Dict())
