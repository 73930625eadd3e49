"""``/api/v1/duplicates`` (detection, "not a duplicate" markers) and ``/api/v1/contacts/merge``, ``/api/v1/merges`` (merge and undo)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, validate
from marshmallow import fields as ma

from crmcore.api.schemas import ContactSchema, QueryId, StrictSchema
from crmcore.auth import request_user
from crmcore.services import duplicates, merge
from crmcore.services.contacts import get_contact
from crmcore.services.serialize import contact_to_dict

MAX_INT = 2**31 - 1

blp = Blueprint(
    "duplicates",
    __name__,
    url_prefix="/api/v1/duplicates",
    description="Duplicate detection: over the whole base, and while a contact is being typed",
)
merges_blp = Blueprint(
    "merges",
    __name__,
    url_prefix="/api/v1",
    description="Merging contacts without losing anything, and undoing a merge",
)

SOURCE = "api"


def _id(**kw: Any) -> ma.Integer:
    return ma.Integer(strict=True, validate=validate.Range(min=1, max=MAX_INT), **kw)


class ScanArgs(Schema):
    threshold = ma.Float(
        validate=validate.Range(min=0, max=1),
        metadata={"description": "Minimum score (default CRM_DUPLICATE_THRESHOLD)"},
    )
    limit = ma.Integer(validate=validate.Range(min=1, max=100000))


class PairSchema(Schema):
    a = ma.Integer()
    b = ma.Integer()
    score = ma.Float()
    reasons = ma.List(ma.String())


class CheckArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    kind = ma.String(validate=validate.OneOf(("person", "organization")))
    first_name = ma.String(validate=validate.Length(max=200))
    last_name = ma.String(validate=validate.Length(max=200))
    name = ma.String(validate=validate.Length(max=300), metadata={"description": "Organization name"})
    email = ma.List(ma.String(validate=validate.Length(max=254)), validate=validate.Length(max=10))
    phone = ma.List(ma.String(validate=validate.Length(max=60)), validate=validate.Length(max=10))
    birthday = ma.Date()
    street = ma.String(validate=validate.Length(max=300))
    postal_code = ma.String(validate=validate.Length(max=20))
    city = ma.String(validate=validate.Length(max=120))
    country = ma.String(validate=validate.Length(max=2))
    organization_id = QueryId()
    exclude_id = QueryId(
        metadata={
            "description": "The contact being edited: left out of the answer, with the contacts marked "
            '"not a duplicate" of it'
        }
    )
    threshold = ma.Float(validate=validate.Range(min=0, max=1))
    limit = ma.Integer(validate=validate.Range(min=1, max=100))


class CheckQueryArgs(Schema):
    exclude_id = QueryId()
    threshold = ma.Float(validate=validate.Range(min=0, max=1))
    limit = ma.Integer(validate=validate.Range(min=1, max=100))


class CandidateSchema(Schema):
    score = ma.Float()
    reasons = ma.List(ma.String())
    contact = ma.Nested(ContactSchema)


class DismissSchema(StrictSchema):
    a = _id(required=True, metadata={"description": "One contact of the pair (any order)"})
    b = _id(required=True, metadata={"description": "The other contact"})


class DismissalSchema(Schema):
    a = ma.Integer(metadata={"description": "The lower contact id of the pair"})
    b = ma.Integer(metadata={"description": "The higher contact id"})
    user_id = ma.Integer(allow_none=True, metadata={"description": "Who marked it (null: the system)"})
    created_at = ma.String()


class DismissedArgs(Schema):
    limit = ma.Integer(validate=validate.Range(min=1, max=10000), load_default=100)
    offset = ma.Integer(validate=validate.Range(min=0, max=MAX_INT), load_default=0)


class MergeRequestSchema(StrictSchema):
    original_id = _id(required=True)
    merged_ids = ma.List(_id(), required=True, validate=validate.Length(min=1, max=50))
    fields = ma.Dict(
        keys=ma.String(validate=validate.Length(max=80)),
        values=_id(),
        load_default=dict,
        metadata={"description": '{field: id of the contact whose value wins}, e.g. {"birthday": 12}'},
    )


class MergeSchema(Schema):
    id = ma.Integer()
    original_id = ma.Integer()
    merged_ids = ma.List(ma.Integer())
    fields = ma.Dict()
    changes = ma.Dict()
    added = ma.Dict()
    moved = ma.Dict()
    user_id = ma.Integer(allow_none=True)
    source = ma.String()
    created_at = ma.String()
    undone_at = ma.String(allow_none=True)
    undone_by_id = ma.Integer(allow_none=True)
    can_undo = ma.Boolean()
    undo_conflicts = ma.List(ma.String())
    contact = ma.Nested(ContactSchema)
    restored = ma.List(ma.Nested(ContactSchema))


def _candidates(found: list[duplicates.Candidate]) -> list[dict[str, Any]]:
    return [
        {"score": c.score, "reasons": list(c.reasons), "contact": contact_to_dict(c.contact)} for c in found
    ]


@blp.route("")
@blp.arguments(ScanArgs, location="query")
@blp.response(200, PairSchema(many=True))
def scan(args: dict[str, Any]) -> Any:
    """Pairs of contacts (that the caller may read) looking like one person or organization, best first.

    Each pair has a score between 0 and 1 and the reasons behind it ("same phone +33...",
    "name similarity 0.93"). Same answer as ``crm duplicates --json``.
    """
    pairs = duplicates.find_duplicates(request_user(), args.get("threshold"), args.get("limit"))
    return [pair.to_dict() for pair in pairs]


@blp.route("/check")
class Check(MethodView):
    @blp.arguments(CheckArgs, location="query")
    @blp.response(200, CandidateSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Contacts that may be the one being typed: ``?first_name=..&last_name=..&email=..&phone=..``.

        Also ``name`` (organization), ``birthday``, ``street``, ``postal_code``, ``city``. The
        creation form uses it to say "there is already a contact with this name".
        """
        options = {k: args.pop(k, None) for k in ("exclude_id", "threshold", "limit")}
        found = duplicates.check_duplicates(args, request_user(), **options)
        return _candidates(found)

    @blp.arguments(ContactSchema)
    @blp.arguments(CheckQueryArgs, location="query")
    @blp.response(200, CandidateSchema(many=True))
    def post(self, draft: dict[str, Any], args: dict[str, Any]) -> Any:
        """The same with a draft contact in the API's JSON shape as the body (``?exclude_id=`` when editing)."""
        found = duplicates.check_duplicates(draft, request_user(), **args)
        return _candidates(found)


@blp.route("/dismissed")
class Dismissed(MethodView):
    @blp.arguments(DismissedArgs, location="query")
    @blp.response(200, DismissalSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Pairs marked "not a duplicate" (both contacts readable by the caller), newest first.

        A pair whose contact was deleted or merged away is not listed (it cannot be proposed anyway).
        """
        rows = duplicates.list_dismissed(request_user(), args["limit"], args["offset"])
        return [duplicates.dismissal_to_dict(row) for row in rows]

    @blp.arguments(DismissSchema)
    @blp.response(201, DismissalSchema)
    @blp.alt_response(200, schema=DismissalSchema, description="The pair was already marked")
    def post(self, data: dict[str, Any]) -> Any:
        """Mark contacts ``a`` and ``b`` "not a duplicate": the scan, ``crm duplicates`` and the check
        while typing never propose the pair again. 404 naming the field when the caller may not read one."""
        row, created = duplicates.dismiss_pair(data["a"], data["b"], request_user())
        return duplicates.dismissal_to_dict(row), 201 if created else 200


@blp.route("/dismissed/<id:a>/<id:b>", methods=["DELETE"])
@blp.response(204)
def undismiss(a: int, b: int) -> Any:
    """Remove the "not a duplicate" marker of the pair (either order): it may be proposed again."""
    duplicates.undismiss(a, b, request_user())
    return None


@merges_blp.route("/contacts/merge", methods=["POST"])
@merges_blp.arguments(MergeRequestSchema)
@merges_blp.response(201, MergeSchema)
def merge_contacts(data: dict[str, Any]) -> Any:
    """Merge ``merged_ids`` into ``original_id``; ``fields`` picks whose value wins for a field.

    Emails, phones, addresses (deduplicated), tags, owners, custom values and the photo are
    combined on the original; notes, warnings, history, members and plugin rows move to it; the
    merged contacts are soft-deleted with ``merged_into_id``. ``POST /api/v1/merges/{id}/undo``
    undoes it.
    """
    record = merge.merge_contacts(
        data["original_id"], data["merged_ids"], data["fields"], request_user(), SOURCE
    )
    original = get_contact(record.original_id, request_user())
    return {**merge.merge_to_dict(record), "contact": contact_to_dict(original)}


@merges_blp.route("/merges/<id:merge_id>")
@merges_blp.response(200, MergeSchema)
def get_merge(merge_id: int) -> Any:
    """One merge: what it changed and moved, and whether it can still be undone (and if not, why)."""
    return merge.merge_to_dict(merge.get_merge(merge_id, request_user()), with_conflicts=True)


@merges_blp.route("/merges/<id:merge_id>/undo", methods=["POST"])
@merges_blp.response(200, MergeSchema)
def undo(merge_id: int) -> Any:
    """Undo a merge: the merged contacts come back with their data and links, the original gets its
    previous values. 409 with ``conflicts`` when it can no longer be done exactly."""
    record = merge.undo_merge(merge_id, request_user(), SOURCE)
    original = get_contact(record.original_id, request_user())
    restored = [get_contact(i, request_user()) for i in record.merged_ids]
    return {
        **merge.merge_to_dict(record),
        "contact": contact_to_dict(original),
        "restored": [contact_to_dict(c) for c in restored],
    }


@merges_blp.route("/contacts/<id:contact_id>/merges")
@merges_blp.response(200, MergeSchema(many=True))
def contact_merges(contact_id: int) -> Any:
    """Merges into this contact, and the one that absorbed it if it was merged, newest first."""
    return [merge.merge_to_dict(m, with_conflicts=True) for m in merge.merges_of(contact_id, request_user())]
