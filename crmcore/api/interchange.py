"""Import and export of contacts.

* ``POST /api/v1/contacts/import`` (multipart: ``file`` and options): runs the import, answers the
  report ``{created, updated, skipped, rejected: [{position, reason}], warnings, batch, ...}``;
* ``POST /api/v1/contacts/import/preview``: format, encoding, delimiter, columns with their field, and
  the first records as they would be imported (for an import wizard); writes nothing;
* ``GET /api/v1/contacts/imports`` and ``POST /api/v1/contacts/imports/{batch}/revert``;
* ``GET /api/v1/contacts/export?format=csv|json|vcf&ids=...``: streamed, only what the caller may see.

The import runs within the request (no job queue yet): big files take as long as ``crm import``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, request, stream_with_context
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import RAISE, Schema, fields, validate

from crmcore.api.schemas import Text
from crmcore.auth import request_user
from crmcore.errors import ValidationError
from crmcore.interchange import export as exporter
from crmcore.interchange import importer

blp = Blueprint(
    "interchange",
    __name__,
    url_prefix="/api/v1/contacts",
    description="Import (CSV, vCard, JSON) and export (CSV, JSON, vCard) of contacts",
)


class FileSchema(Schema):
    file = Upload(required=True, metadata={"description": "The file: CSV, vCard (.vcf) or JSON"})


class ImportOptionsSchema(Schema):
    class Meta:
        unknown = RAISE

    mode = fields.String(load_default="create", validate=validate.OneOf(importer.MODES))
    match = fields.String(load_default="email", validate=validate.OneOf(importer.MATCH_KEYS))
    map = fields.List(
        Text(300),
        load_default=list,
        metadata={"description": "COLUMN=FIELD, repeatable: overrides the automatic mapping of a CSV column"},
    )
    dry_run = fields.Boolean(
        load_default=False, metadata={"description": "Report what would happen; write nothing"}
    )
    format = fields.String(
        validate=validate.OneOf(importer.FORMATS), metadata={"description": "Skip detection"}
    )
    encoding = Text(40, metadata={"description": "Skip encoding detection (utf-8, cp1252...)"})
    delimiter = Text(3, metadata={"description": "Skip delimiter detection (',', ';', 'tab')"})


class PreviewOptionsSchema(ImportOptionsSchema):
    rows = fields.Integer(load_default=10, validate=validate.Range(min=1, max=200))


class ExportArgs(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(load_default="csv", validate=validate.OneOf(tuple(exporter.FORMATS)))
    ids = fields.List(
        fields.String(), metadata={"description": "Contact ids (repeated, or separated by commas)"}
    )
    q = Text(200)
    kind = fields.String(validate=validate.OneOf(("person", "organization")))
    status = fields.String(validate=validate.OneOf(("prospect", "customer", "user", "supplier")))
    tag = Text(80)
    owner = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    organization_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    sort = fields.String(
        load_default="name",
        validate=validate.OneOf(("name", "-name", "number", "-number", "created_at", "-created_at")),
    )
    version = fields.String(load_default="3.0", validate=validate.OneOf(("3.0", "4.0")))
    bom = fields.Boolean(
        load_default=True, metadata={"description": "CSV: start with a UTF-8 BOM (for Excel)"}
    )


def _source(files: dict[str, Any], options: dict[str, Any]) -> importer.Source:
    upload = files["file"]
    return importer.Source(
        upload.stream,
        file_name=upload.filename,
        format=options.get("format"),
        encoding=options.get("encoding"),
        delimiter=options.get("delimiter"),
        overrides=options.get("map") or (),
        size=request.content_length,
    )


@blp.route("/import", methods=["POST"])
@blp.arguments(ImportOptionsSchema, location="form")
@blp.arguments(FileSchema, location="files")
@blp.response(200)
def import_contacts(options: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    """Import a file. Each record is applied whole or rejected with its position (line or card number)
    and the reason; ``dry_run`` reports without writing. The answer is the import report; its ``batch``
    can be reverted."""
    source = _source(files, options)
    run = importer.ImportOptions(
        mode=options["mode"],
        match=options["match"],
        dry_run=options["dry_run"],
        file_name=files["file"].filename,
        format=source.format,
        source="import",
    )
    return importer.run_import(source.records(), request_user(), run).to_dict()


@blp.route("/import/preview", methods=["POST"])
@blp.arguments(PreviewOptionsSchema, location="form")
@blp.arguments(FileSchema, location="files")
@blp.response(200)
def preview_import(options: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    """How a file would be read: format, encoding, delimiter, each column and its field (change one with
    ``map``), and the first ``rows`` records in the API's JSON shape (or why they cannot be read)."""
    return importer.preview(_source(files, options), options["rows"])


@blp.route("/imports", methods=["GET"])
@blp.response(200)
def list_imports() -> list[dict[str, Any]]:
    """The last imports (an admin sees everyone's, a user their own)."""
    return [importer.batch_to_dict(batch) for batch in importer.list_batches(request_user())]


@blp.route("/imports/<string:batch>/revert", methods=["POST"])
@blp.response(200)
def revert_import(batch: str) -> dict[str, Any]:
    """Undo an import: contacts it created are deleted (restorable), contacts it updated get back the
    values it changed, notes it added are removed. Contacts changed since are kept and listed."""
    return importer.revert_import(batch, request_user(), "api")


def _ids(values: list[str] | None) -> list[int] | None:
    if not values:
        return None
    ids = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or not 0 < int(part) < 2**31:
                raise ValidationError({"ids": [f"{part!r} is not a contact id"]})
            ids.append(int(part))
    return ids


@blp.route("/export", methods=["GET"])
@blp.arguments(ExportArgs, location="query")
@blp.response(200, content_type="text/csv")
@blp.alt_response(200, content_type="application/json", description="format=json")
@blp.alt_response(200, content_type="text/vcard", description="format=vcf")
def export_contacts(args: dict[str, Any]) -> Response:
    """Export the contacts the caller may see (all, or ``ids``, or filtered as the list), streamed:
    CSV with the import's columns, JSON (a list in the API's shape) or vCard (3.0, or ``version=4.0``)."""
    file_format = args.pop("format")
    version = args.pop("version")
    bom = args.pop("bom")
    filters = {key: value for key, value in args.items() if value is not None}
    filters["ids"] = _ids(args.get("ids"))
    if filters["ids"] is None:
        filters.pop("ids")
    exporter.check_filters(file_format, **filters)
    user = request_user()
    if file_format == "vcf":
        chunks = exporter.export_vcf(user, version, **filters)
    elif file_format == "csv":
        chunks = exporter.export_csv(user, bom=bom, **filters)
    else:
        chunks = exporter.export(file_format, user, **filters)
    content_type, extension = exporter.FORMATS[file_format]
    name = f"contacts-{dt.date.today():%Y%m%d}.{extension}"
    return Response(
        stream_with_context(chunks),
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
