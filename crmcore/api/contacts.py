"""``/api/v1/contacts``: the contact record, its history, notes, warnings, photo and related contacts."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from crmcore.api.schemas import (
    ContactBatchResultSchema,
    ContactBatchSchema,
    ContactListArgs,
    ContactPageSchema,
    ContactSchema,
    CopyAddressSchema,
    HistoryEntrySchema,
    NotePatchSchema,
    NoteSchema,
    StatusSchema,
    WarningSchema,
)
from crmcore.auth import request_user
from crmcore.errors import NotFound, PreconditionFailed, ValidationError
from crmcore.services import contacts as svc
from crmcore.services import history, notes, photos
from crmcore.services.contact_query import list_contacts, related_contacts
from crmcore.services.serialize import contact_to_dict, contacts_to_dicts

blp = Blueprint(
    "contacts", __name__, url_prefix="/api/v1/contacts", description="Contacts: people and organizations"
)
sub_blp = Blueprint(
    "contact_records",
    __name__,
    url_prefix="/api/v1/contacts",
    description="What hangs off a contact: history, notes, warnings, photo, related contacts",
)

SOURCE = "api"


def _etag(version: int) -> str:
    return f'"{version}"'


def _if_match() -> int | None:
    header = request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return None
    value = header.split(",")[0].strip()
    value = value[2:] if value.startswith("W/") else value
    try:
        return int(value.strip('"'))
    except ValueError:
        raise PreconditionFailed(
            f'If-Match must be the ETag of the contact (e.g. "3"), got {header!r}'
        ) from None


def _with_etag(contact: Any, status: int = 200) -> tuple[dict[str, Any], int, dict[str, str]]:
    return contact_to_dict(contact), status, {"ETag": _etag(contact.version)}


def _custom_filters() -> dict[str, str]:
    """The ``custom.<key>`` filters; any other argument the list does not know is refused, so a typo
    (``?stauts=customer``) is an error instead of silently listing everything."""
    known = set(ContactListArgs().fields)
    unknown = sorted(k for k in request.args if k not in known and not k.startswith("custom."))
    if unknown:
        raise ValidationError(
            {name: ["unknown query argument"] for name in unknown}, "invalid query arguments"
        )
    return {key[len("custom.") :]: value for key, value in request.args.items() if key.startswith("custom.")}


@blp.route("")
class Contacts(MethodView):
    @blp.arguments(ContactListArgs, location="query")
    @blp.response(200, ContactPageSchema)
    def get(self, args: dict[str, Any]) -> Response:
        """List contacts the caller may see: search, filter (also ``custom.<key>=value``), sort, paginate.

        Pagination is by cursor: pass ``next_cursor`` back as ``cursor`` for the next page.
        """
        page = list_contacts(request_user(), custom=_custom_filters(), eager=False, **args)
        # contacts_to_dicts is already the documented shape: a second pass through marshmallow would
        # cost as much as the query (tests check the schema describes it).
        return jsonify(
            {
                "items": contacts_to_dicts(page.items),
                "next_cursor": page.next_cursor,
                "limit": page.limit,
            }
        )

    @blp.arguments(ContactSchema)
    @blp.response(201, ContactSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a contact. ``kind`` defaults to person; a person needs ``last_name``, an organization ``name``."""
        data.setdefault("kind", "person")
        contact = svc.create_contact(data, request_user(), SOURCE)
        body, status, headers = _with_etag(contact, 201)
        headers["Location"] = url_for("contacts.Contact", contact_id=contact.id)
        return body, status, headers


@blp.route("/batch")
class ContactBatch(MethodView):
    @blp.arguments(ContactBatchSchema)
    @blp.response(201, ContactBatchResultSchema)
    def post(self, data: dict[str, Any]) -> Response:
        """Create up to 1,000 contacts in one transaction (imports, synchronisation): all or none.

        Each item is what ``POST /api/v1/contacts`` takes; errors name the item (``items[3].last_name``).
        The created contacts come back in the order sent.
        """
        items = [{"kind": "person", **item} for item in data["items"]]
        ids = svc.create_contacts(items, request_user(), SOURCE)
        response = jsonify({"items": contacts_to_dicts(svc.contacts_by_ids(ids))})
        response.status_code = 201
        return response


@blp.route("/<id:contact_id>")
class Contact(MethodView):
    @blp.response(200, ContactSchema)
    def get(self, contact_id: int) -> Any:
        """One contact. The ETag is its version: send it back in If-Match when updating."""
        contact = svc.get_contact(contact_id, request_user())
        if request.if_none_match and request.if_none_match.contains(str(contact.version)):
            return Response(status=304, headers={"ETag": _etag(contact.version)})
        return _with_etag(contact)

    @blp.arguments(ContactSchema)
    @blp.response(200, ContactSchema)
    def patch(self, data: dict[str, Any], contact_id: int) -> Any:
        """Change the fields sent. Lists (emails, phones, addresses, tags, owners) are replaced whole;
        ``custom`` keys are merged (null removes one). A stale If-Match gets 412, a stale ``version`` 409,
        both with the current state in ``current``."""
        contact = svc.update_contact(contact_id, data, request_user(), SOURCE, if_match=_if_match())
        return _with_etag(contact)

    @blp.response(204)
    def delete(self, contact_id: int) -> None:
        """Delete a contact (soft delete: ``POST .../restore`` brings it back)."""
        svc.delete_contact(contact_id, request_user(), SOURCE)


@blp.route("/<id:contact_id>/restore", methods=["POST"])
@blp.response(200, ContactSchema)
def restore(contact_id: int) -> Any:
    """Restore a deleted contact."""
    return _with_etag(svc.restore_contact(contact_id, request_user(), SOURCE))


@blp.route("/<id:contact_id>/status", methods=["POST"])
@blp.arguments(StatusSchema)
@blp.response(200, ContactSchema)
def force_status(data: dict[str, Any], contact_id: int) -> Any:
    """Force the status (prospect, customer, user) and/or the supplier flag."""
    contact = svc.get_contact(contact_id, request_user(), "write")
    return _with_etag(
        svc.set_status(contact, data.get("status"), data.get("is_supplier"), request_user(), SOURCE)
    )


@blp.route("/<id:contact_id>/addresses/copy", methods=["POST"])
@blp.arguments(CopyAddressSchema)
@blp.response(200, ContactSchema)
def copy_address(data: dict[str, Any], contact_id: int) -> Any:
    """Copy the main address to another kind (billing, shipping...), replacing that kind's address."""
    return _with_etag(svc.copy_main_address(contact_id, data["to"], request_user(), SOURCE))


@sub_blp.route("/<id:contact_id>/history")
@sub_blp.response(200, HistoryEntrySchema(many=True))
def contact_history(contact_id: int) -> Any:
    """Every change of the contact, newest first: who, when, source, field, old and new value."""
    contact = svc.get_contact(contact_id, request_user(), include_deleted=True)
    return [history.entry_to_dict(e) for e in history.entries(contact.id)]


@sub_blp.route("/<id:contact_id>/consents")
@sub_blp.response(200, HistoryEntrySchema(many=True))
def contact_consents(contact_id: int) -> Any:
    """Consent proofs: every grant or withdrawal, with when, by whom and the source."""
    contact = svc.get_contact(contact_id, request_user(), include_deleted=True)
    return [history.entry_to_dict(e) for e in history.entries(contact.id) if e.action == "consent"]


@sub_blp.route("/<id:contact_id>/related")
@sub_blp.response(200, ContactSchema(many=True))
def related(contact_id: int) -> Any:
    """Contacts sharing an email domain with this one (public mail domains excluded)."""
    contact = svc.get_contact(contact_id, request_user())
    return [contact_to_dict(c) for c in related_contacts(contact, request_user())]


@sub_blp.route("/<id:contact_id>/notes")
class Notes(MethodView):
    @sub_blp.response(200, NoteSchema(many=True))
    def get(self, contact_id: int) -> Any:
        """Notes, newest first (``?kind=internal|customer``)."""
        kind = request.args.get("kind")
        if kind not in (None, "internal", "customer"):
            raise ValidationError({"kind": ["must be 'internal' or 'customer'"]})
        return [notes.note_to_dict(n) for n in notes.list_notes(contact_id, request_user(), kind)]

    @sub_blp.arguments(NoteSchema)
    @sub_blp.response(201, NoteSchema)
    def post(self, data: dict[str, Any], contact_id: int) -> Any:
        """Add a note (``internal`` by default; ``customer`` notes are printed on documents)."""
        return notes.note_to_dict(
            notes.add_note(contact_id, data["body"], data["kind"], request_user(), SOURCE)
        )


@sub_blp.route("/<id:contact_id>/notes/<id:note_id>")
class NoteItem(MethodView):
    @sub_blp.arguments(NotePatchSchema)
    @sub_blp.response(200, NoteSchema)
    def patch(self, data: dict[str, Any], contact_id: int, note_id: int) -> Any:
        note = notes.update_note(
            contact_id, note_id, data.get("body"), data.get("kind"), request_user(), SOURCE
        )
        return notes.note_to_dict(note)

    @sub_blp.response(204)
    def delete(self, contact_id: int, note_id: int) -> None:
        notes.delete_note(contact_id, note_id, request_user(), SOURCE)


@sub_blp.route("/<id:contact_id>/warnings")
class Warnings(MethodView):
    @sub_blp.response(200, WarningSchema(many=True))
    def get(self, contact_id: int) -> Any:
        """Warnings shown on the contact; ``blocking`` ones make ensure_not_blocked refuse."""
        return svc.warnings_of(svc.get_contact(contact_id, request_user()))

    @sub_blp.arguments(WarningSchema)
    @sub_blp.response(201, WarningSchema)
    def post(self, data: dict[str, Any], contact_id: int) -> Any:
        return svc.add_warning(contact_id, data["message"], data["level"], request_user(), SOURCE)


@sub_blp.route("/<id:contact_id>/warnings/<id:warning_id>", methods=["DELETE"])
@sub_blp.response(204)
def delete_warning(contact_id: int, warning_id: int) -> None:
    svc.remove_warning(contact_id, warning_id, request_user(), SOURCE)


@sub_blp.route("/<id:contact_id>/photo")
class Photo(MethodView):
    @sub_blp.response(200)
    def get(self, contact_id: int) -> Any:
        """The photo (JPEG or PNG, at most 200x300)."""
        photo = photos.get_photo(contact_id, request_user())
        if photo is None:
            raise NotFound(f"contact {contact_id} has no photo")
        return Response(
            photo.data, mimetype=photo.content_type, headers={"Cache-Control": "private, max-age=60"}
        )

    @sub_blp.response(204)
    def put(self, contact_id: int) -> None:
        """Upload a photo: the raw image as body, or a multipart form with a ``photo`` file (max 10 MB)."""
        upload = request.files.get("photo")
        data = upload.read() if upload is not None else request.get_data()
        if not data:
            raise ValidationError({"photo": ["send an image as the body or as the 'photo' form field"]})
        photos.set_photo(contact_id, data, request_user(), SOURCE)

    @sub_blp.response(204)
    def delete(self, contact_id: int) -> None:
        photos.delete_photo(contact_id, request_user(), SOURCE)


@sub_blp.route("/<id:contact_id>/tabs")
@sub_blp.response(200)
def tabs(contact_id: int) -> Any:
    """Tabs contributed by plugins (built-ins included) for this contact, rendered as HTML.

    ``?lang=fr`` picks the label language. A tab whose plugin fails has ``error`` set.
    """
    from crmcore.services.contributions import render_tabs

    contact = svc.get_contact(contact_id, request_user())
    return [
        {
            "key": t.key,
            "label": t.label,
            "plugin": t.plugin,
            "order": t.order,
            "count": t.count,
            "html": str(t.html),
            "error": t.error,
        }
        for t in render_tabs(contact, request_user(), request.args.get("lang"))
    ]


@sub_blp.route("/<id:contact_id>/actions")
@sub_blp.response(200)
def actions(contact_id: int) -> Any:
    """Entries of the contact's action menu contributed by plugins."""
    from crmcore.contributions import localize
    from crmcore.services.contributions import contact_actions

    contact = svc.get_contact(contact_id, request_user())
    lang = request.args.get("lang")
    return [
        {
            "key": a.key,
            "label": localize(a.label, lang),
            "url": a.url,
            "method": a.method,
            "icon": a.icon,
            "plugin": plugin,
            "order": a.order,
        }
        for plugin, a in contact_actions(contact, request_user())
    ]
