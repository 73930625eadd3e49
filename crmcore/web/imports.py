"""The import wizard: upload a CSV or vCard file, check the columns and a preview, run, read the report.

1. ``/contacts/import``: upload. The file is kept server-side in the import folder (``CRM_IMPORT_FOLDER``,
   default ``<instance>/imports``) under a random token; the client only ever sends the token back.
2. ``/contacts/import/<token>``: encoding, delimiter, every column with its field (pre-filled from the
   automatic mapping), the first rows as they would be imported with their problems (a dry run of those
   rows), the mode, the match key and the dry-run checkbox.
3. ``/contacts/import/<token>/run``: the progress, then the report (downloadable as JSON or CSV) with a
   button reverting the import.

Progress: a file up to ``CRM_IMPORT_INLINE_SIZE`` bytes (1 MiB) is imported within the request; a bigger
one on the job queue when one is configured (``CRM_CELERY_BROKER_URL``: ``queued`` until a worker takes
it), else in a background thread of the web process (:mod:`crmcore.interchange.runs`). Whoever runs it
writes its progress to ``<token>.json`` after each chunk of records (2,000). The page polls
``/contacts/import/<token>/status`` (or reloads itself without JavaScript). The uploaded file is deleted
after a real run; the files of a wizard are deleted after a day.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from werkzeug.exceptions import RequestEntityTooLarge

from crmcore.auth import request_user
from crmcore.contributions import localize
from crmcore.errors import CrmError, ValidationError
from crmcore.interchange import importer, runs
from crmcore.interchange.csv_io import CsvReader
from crmcore.interchange.headers import (
    ADDRESS_KINDS,
    ADDRESS_PARTS,
    HELPERS,
    SCALARS,
    Column,
    suggest,
)
from crmcore.services import lookups
from crmcore.services.fields import all_fields
from crmcore.web.labels import ADDRESS_KINDS as ADDRESS_KIND_LABELS
from crmcore.web.labels import EMAIL_LABELS, SOCIAL_LABELS, SOCIAL_NETWORKS, field_label
from crmcore.web.labels import lang as page_lang
from crmcore.web.messages import translate, translate_errors

log = logging.getLogger("crmcore.web.imports")

bp = Blueprint("import_pages", __name__)

SOURCE = "ui"
PREVIEW_ROWS = 10
EXTENSIONS = (".csv", ".tsv", ".txt", ".vcf", ".vcard", ".json")
ENCODINGS = ("utf-8", "cp1252", "iso8859-15", "iso8859-1", "utf-16", "mac_roman")
DELIMITERS = {",": ",", ";": ";", "tab": lazy_gettext("tab"), "|": "|"}

MODE_LABELS = {
    "create": lazy_gettext("Create new contacts"),
    "update": lazy_gettext("Update existing contacts only"),
    "create-or-update": lazy_gettext("Create or update"),
}
MATCH_LABELS = {
    "email": lazy_gettext("Email"),
    "phone": lazy_gettext("Phone"),
    "number": lazy_gettext("Contact number"),
    "external_id": lazy_gettext("Internal reference"),
}
HELPER_LABELS = {
    "full_name": lazy_gettext("Full name (split into first and last name)"),
    "birth_year": lazy_gettext("Birth year"),
    "birth_month": lazy_gettext("Birth month"),
    "birth_day": lazy_gettext("Birth day"),
    "email_label": lazy_gettext("Label of the email of the same group"),
    "phone_label": lazy_gettext("Label of the phone of the same group"),
    "address_label": lazy_gettext("Label of the address of the same group"),
}


# -- settings and files ------------------------------------------------------------------------------


def _int_config(name: str, default: int) -> int:
    value = current_app.config.get(name)
    try:
        return default if value in (None, "") else int(value)  # 0 is a setting too
    except (TypeError, ValueError):
        return default


def max_size() -> int:
    return _int_config("IMPORT_MAX_SIZE", 50 * 1024 * 1024)


def inline_size() -> int:
    return _int_config("IMPORT_INLINE_SIZE", 1024 * 1024)


def _user_id() -> int | None:
    user = request_user()
    return user.id if user is not None else None


def _load(token: str) -> dict[str, Any]:
    """The state of the wizard ``token`` of the current user; 404 for anything else."""
    if not runs.TOKEN.match(token):
        abort(404)
    state = runs.read_state(token)
    # A state without a user is a job of ``crm import --queue``: not the wizard's.
    if state is None or state.get("user_id") is None or state.get("user_id") != _user_id():
        abort(404)
    return state


# -- step 1: upload ----------------------------------------------------------------------------------


@bp.url_value_preprocessor
def _limit_upload(endpoint: str | None, _values: Any) -> None:
    # Runs before the CSRF check reads the form: a too big upload stops at max_size().
    if endpoint == "import_pages.upload" and request.method == "POST":
        request.max_content_length = max_size()


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_error: Any) -> Any:
    message = _("The file is too large: at most %(size)s MB.", size=_mb(max_size()))
    return render_template("imports/upload.html", error=message, max_mb=_mb(max_size())), 413


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.0f}" if size >= 1024 * 1024 else f"{size / 1024 / 1024:.2f}"


@bp.route("/contacts/import", methods=["GET", "POST"])
def upload() -> Any:
    if request.method == "GET":
        return render_template("imports/upload.html", error=None, max_mb=_mb(max_size()))
    runs.sweep()
    error = None
    file = request.files.get("file")
    name = os.path.basename((file.filename or "").replace("\\", "/")) if file else ""
    if file is None or not name:
        error = _("Choose a file to import.")
    elif not name.lower().endswith(EXTENSIONS):
        error = _(
            "%(name)s is not a CSV or vCard file: save it as CSV (comma or semicolon separated) or vCard "
            "(.vcf) first.",
            name=name,
        )
    if error:
        return render_template("imports/upload.html", error=error, max_mb=_mb(max_size())), 400
    token = runs.new_token()
    upload_path, _state_path = runs.paths(token)
    file.save(upload_path)
    size = upload_path.stat().st_size
    if size > max_size():  # no Content-Length (chunked upload): checked after the fact
        upload_path.unlink(missing_ok=True)
        return _too_large(None)
    state = runs.new_state(token, _user_id(), name, size, {}, SOURCE)
    problem = _check_file(upload_path, state)
    if problem:
        upload_path.unlink(missing_ok=True)
        return render_template("imports/upload.html", error=problem, max_mb=_mb(max_size())), 400
    runs.save_state(token, state)
    return redirect(url_for("import_pages.mapping", token=token))


def _check_file(path: Path, state: dict[str, Any]) -> str | None:
    """Why the file cannot be imported at all (empty, binary, unreadable), else None."""
    with open(path, "rb") as stream:
        head = stream.read(4096)
    if not head.strip(b"\xef\xbb\xbf \t\r\n"):
        return _("The file %(name)s is empty.", name=state["file_name"])
    wide = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not wide and (b"\x00" in head or head.startswith((b"PK\x03\x04", b"%PDF", b"\xd0\xcf\x11\xe0"))):
        return _(
            "%(name)s is not a text file: save it as CSV (comma or semicolon separated) or vCard (.vcf) first.",
            name=state["file_name"],
        )
    try:
        _inspect(path, state)
    except ValidationError as exc:
        return _errors_text(exc)
    except CrmError as exc:
        return translate(exc.message)
    return None


def _errors_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{key}: {message}" for key, messages in translate_errors(exc.errors).items() for message in messages
    )


# -- step 2: columns and preview -------------------------------------------------------------------


class Inspection:
    """What the wizard shows of a file: its description, the suggested and chosen columns."""

    def __init__(self, describe: dict[str, Any], suggested: list[Column], columns: list[Column]) -> None:
        self.format = describe["format"]
        self.encoding = describe.get("encoding")
        self.delimiter = describe.get("delimiter")
        self.suggested = suggested
        self.columns = columns
        self.records: list[dict[str, Any]] = []
        self.error: str | None = None


def _source(stream: Any, state: dict[str, Any], overrides: list[str]) -> importer.Source:
    settings = state["settings"]
    return importer.Source(
        stream,
        file_name=state["file_name"],
        encoding=settings.get("encoding") or None,
        delimiter=settings.get("delimiter") or None,
        overrides=overrides,
        size=state["size"],
    )


def _inspect(path: Path, state: dict[str, Any], rows: int = 0) -> Inspection:
    """Open the file with the chosen settings; ``rows``: also read that many records for the preview.

    A CSV file none of whose columns is recognised is still shown (so the user can choose fields)."""
    with open(path, "rb") as stream:
        try:
            source = _source(stream, state, [])
            suggested = list(source.columns)
        except ValidationError as exc:
            if "map" not in exc.errors:
                raise
            stream.seek(0)
            settings = state["settings"]
            reader = CsvReader(stream, settings.get("encoding") or None, settings.get("delimiter") or None)
            suggested = suggest(reader.header, all_fields())
            if not state["settings"]["map"]:
                inspection = Inspection(
                    {"format": "csv", "encoding": reader.encoding, "delimiter": reader.delimiter},
                    suggested,
                    suggested,
                )
                inspection.error = _("No column was recognised: choose a field for the columns to import.")
                return inspection
        stream.seek(0)
        source = _source(stream, state, runs.overrides(state))
        inspection = Inspection(source.describe(), suggested, list(source.columns))
        if rows:
            records = []
            for record in source.records():
                records.append(record)
                if len(records) >= rows:
                    break
            inspection.records = _preview_rows(records, state)
    return inspection


def _preview_rows(records: list[Any], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The first records with what a dry run of them says (rejected with the reason, warnings, skipped)."""
    shown = [
        {"position": r.position, "data": copy.deepcopy(r.data) or {}, "error": r.error, "problems": []}
        for r in records
    ]
    settings = state["settings"]
    options = importer.ImportOptions(
        mode=settings["mode"], match=settings["match"], dry_run=True, file_name=state["file_name"]
    )
    report = importer.run_import(records, request_user(), options)
    by_position = {row["position"]: row for row in shown}
    for rejection in report.rejected:
        if rejection.position in by_position:
            by_position[rejection.position]["problems"].append(("error", reason(rejection.reason)))
    for warning in report.warnings:
        if warning.position in by_position:
            by_position[warning.position]["problems"].append(("warning", reason(warning.reason)))
    for row in shown:
        row["cells"] = _flatten(row["data"])
    return shown


_WHERE = re.compile(r"^(?P<path>[\w.\[\]]+)(?: \(column '(?P<column>.*)'\))?: (?P<message>.+)$", re.S)


def reason(text: str) -> str:
    """An importer's reason ("emails[0].address (column 'Mail'): 'x' is not an email address; ...")
    in the page's language, with field labels instead of paths."""
    parts = []
    for part in str(text).split("; "):
        match = _WHERE.match(part)
        if match is None or match["path"] in ("item", "line", "card"):
            parts.append(translate(part))
            continue
        label = field_label(match["path"])
        if match["column"] is not None:
            label = _("%(field)s (column %(column)s)", field=label, column=match["column"])
        parts.append(f"{label}: {translate(match['message'])}")
    return "; ".join(parts)


def _flatten(data: dict[str, Any]) -> list[tuple[str, str]]:
    """A record as (label, value) pairs for the preview table."""
    out: list[tuple[str, str]] = []
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        if key == "emails":
            out.append((field_label("emails"), ", ".join(e.get("address", "") for e in value)))
        elif key == "phones":
            out.append((field_label("phones"), ", ".join(p.get("number", "") for p in value)))
        elif key == "addresses":
            for address in value:
                parts = [address.get(p) for p in ADDRESS_PARTS if address.get(p)]
                kind = ADDRESS_KIND_LABELS.get(address.get("kind", "main"), address.get("kind"))
                out.append((f"{field_label('addresses')} ({kind})", ", ".join(parts)))
        elif key == "custom" and isinstance(value, dict):
            out.extend(
                (field_label(f"custom.{k}"), _text(v)) for k, v in value.items() if v not in (None, "")
            )
        elif key == "social" and isinstance(value, dict):
            out.extend((field_label(f"social.{k}"), _text(v)) for k, v in value.items() if v)
        elif key == "organization":
            out.append((field_label("organization_id"), _text(value)))
        elif key == "notes":
            out.append((field_label("body"), _text(value)))
        else:
            out.append((field_label(key), _text(value)))
    return out


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def field_choices(columns: list[Column]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The fields a column can map to, in groups of (value, label)."""
    contact = [(name, field_label(name)) for name in SCALARS if name not in ("organization", "country")]
    contact.append(("organization", _("Organization (name: found or created)")))
    contact.append(("tags", field_label("tags")))
    contact.append(("notes", _("Note (each cell becomes a note)")))
    emails = [("email", _("Email (work)"))] + [
        (f"email.{label}", f"{_('Email')} ({EMAIL_LABELS[label]})") for label in ("home", "other")
    ]
    phones = [("phone", _("Phone (work)")), ("mobile", _("Mobile phone"))]
    for value in lookups.values("phone_type"):
        phones.append((f"phone.{value.key}", f"{_('Phone')} ({localize(_lookup_label(value), page_lang())})"))
    address = []
    for kind in ADDRESS_KINDS:
        kind_label = ADDRESS_KIND_LABELS.get(kind, kind)
        address.extend(
            (part if kind == "main" else f"address.{kind}.{part}", f"{kind_label} · {_part_label(part)}")
            for part in ADDRESS_PARTS
        )
    social = [(f"social.{network}", str(SOCIAL_LABELS.get(network, network))) for network in SOCIAL_NETWORKS]
    custom = [
        (f"custom.{key}", localize(field_def.label, page_lang())) for key, field_def in all_fields().items()
    ]
    helpers = [(name, str(HELPER_LABELS[name])) for name in HELPERS]
    groups = [
        (_("Contact"), contact),
        (_("Emails"), emails),
        (_("Phones"), phones),
        (_("Addresses"), address),
        (_("Social networks"), social),
        (_("Custom fields"), custom),
        (_("Other applications' columns"), helpers),
    ]
    known = {value for _label, options in groups for value, _text in options}
    extra = sorted({c.field for c in columns if c.field and c.field not in known})
    if extra:
        groups.append((_("Other"), [(value, value) for value in extra]))
    return [(label, options) for label, options in groups if options]


def _part_label(part: str) -> str:
    return field_label("country") if part == "country" else field_label(part)


def _lookup_label(value: Any) -> Any:
    return {"en": value.label_en, "fr": value.label_fr}


def _form_settings(state: dict[str, Any], inspection: Inspection | None) -> None:
    """Read step 2's form into ``state["settings"]``; ``map`` keeps only the columns changed from the
    automatic mapping (by position)."""
    settings = state["settings"]
    form = request.form
    mode = form.get("mode", "create")
    settings["mode"] = mode if mode in importer.MODES else "create"
    match = form.get("match", "email")
    settings["match"] = match if match in importer.MATCH_KEYS else "email"
    settings["dry_run"] = form.get("dry_run") == "1"
    encoding = form.get("encoding", "")
    delimiter = form.get("delimiter", "")
    encoding = encoding if encoding in ENCODINGS else ""
    delimiter = delimiter if delimiter in DELIMITERS else ""
    if (encoding, delimiter) != (settings.get("encoding", ""), settings.get("delimiter", "")):
        # Other columns may come out: the mapping starts again from the automatic one.
        settings["encoding"], settings["delimiter"], settings["map"] = encoding, delimiter, {}
        return
    if inspection is None:
        return
    changed = {}
    for column in inspection.suggested:
        chosen = form.get(f"map-{column.index}")
        if chosen is None:
            chosen = settings["map"].get(str(column.index), column.field)
        if chosen != column.field:
            changed[str(column.index)] = chosen[:100]
    settings["map"] = changed


@bp.route("/contacts/import/<token>", methods=["GET", "POST"])
def mapping(token: str) -> Any:
    state = _load(token)
    upload_path, _state_path = runs.paths(token)
    if not upload_path.exists():
        flash(_("The uploaded file is no longer here (files are kept for a day): upload it again."), "error")
        return redirect(url_for("import_pages.upload"))
    if state.get("run") and state["run"]["state"] in runs.ACTIVE:
        return redirect(url_for("import_pages.run", token=token))
    action = request.form.get("action") if request.method == "POST" else None
    if action == "cancel":
        runs.discard(token)
        flash(_("The import was cancelled and the file deleted."), "success")
        return redirect(url_for("contact_pages.index"))
    error = None
    inspection = None
    if request.method == "POST":
        try:
            before = _inspect(upload_path, state)
        except CrmError:
            before = None
        _form_settings(state, before)
        runs.save_state(token, state)
    try:
        inspection = _inspect(upload_path, state, PREVIEW_ROWS)
    except ValidationError as exc:
        error = _errors_text(exc)
    except CrmError as exc:
        error = translate(exc.message)
    if inspection is not None and inspection.error:
        error = inspection.error
    if action == "run" and error is None:
        return _start(token, state)
    status = 400 if (error and request.method == "POST") else 200
    return render_template(
        "imports/mapping.html",
        state=state,
        settings=state["settings"],
        inspection=inspection,
        error=error,
        choices=field_choices(inspection.columns if inspection else []),
        modes=MODE_LABELS,
        matches=MATCH_LABELS,
        encodings=ENCODINGS,
        delimiters=DELIMITERS,
    ), status


# -- step 3: run, progress, report -------------------------------------------------------------------


def _start(token: str, state: dict[str, Any]) -> Any:
    try:
        runs.start(token, state, request_user(), inline=state["size"] <= inline_size())
    except runs.QueueUnavailable:
        flash(
            _("The job queue cannot be reached, so the import did not start: try again in a moment."), "error"
        )
        return redirect(url_for("import_pages.mapping", token=token))
    return redirect(url_for("import_pages.run", token=token))


def _run_error(run_state: dict[str, Any]) -> str | None:
    """Why the run failed, in the page's language."""
    code = run_state.get("error_code")
    if code == "unexpected":
        return _(
            "Unexpected error: %(detail)s (the details are in the log).", detail=run_state["error_detail"]
        )
    if code == "file_missing":
        return _("The uploaded file is no longer in the import folder: upload it again.")
    if code == "user_gone":
        return _("The user who started the import no longer exists or was deactivated.")
    if code == "interrupted":
        return _("The import was interrupted: the web server or the worker running it stopped.")
    return translate(run_state["error"]) if run_state.get("error") else None


@bp.route("/contacts/import/<token>/status")
def status(token: str) -> Any:
    return jsonify(runs.status(_load(token)))


@bp.route("/contacts/import/<token>/run")
def run(token: str) -> Any:
    state = _load(token)
    if not state.get("run"):
        return redirect(url_for("import_pages.mapping", token=token))
    run_state = state["run"]
    report = run_state.get("report")
    can_rerun = run_state["dry_run"] and runs.paths(token)[0].exists()
    return render_template(
        "imports/run.html",
        state=state,
        run=run_state,
        status=runs.status(state),
        report=report,
        rejected=[(r["position"], reason(r["reason"])) for r in (report or {}).get("rejected", [])],
        warnings=[(w["position"], reason(w["reason"])) for w in (report or {}).get("warnings", [])],
        error=_run_error(run_state),
        can_rerun=can_rerun,
    )


@bp.route("/contacts/import/<token>/report.<any(json, csv):extension>")
def download_report(token: str, extension: str) -> Any:
    state = _load(token)
    report = (state.get("run") or {}).get("report")
    if not report:
        abort(404)
    stem = os.path.splitext(state["file_name"])[0] or "import"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80]
    if extension == "json":
        body = json.dumps({"file_name": state["file_name"], **report}, ensure_ascii=False, indent=2)
        content_type = "application/json"
    else:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["outcome", "position", "reason"])
        for name in ("created", "updated", "skipped", "rejected_total"):
            writer.writerow([name.replace("_total", ""), "", report[name]])
        writer.writerows(["rejected", r["position"], r["reason"]] for r in report["rejected"])
        writer.writerows(["warning", w["position"], w["reason"]] for w in report["warnings"])
        body = "\ufeff" + out.getvalue()
        content_type = "text/csv; charset=utf-8"
    return Response(
        body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{stem}-report.{extension}"'},
    )


# -- past imports --------------------------------------------------------------------------------------


@bp.route("/contacts/imports")
def history() -> Any:
    batches = [
        {**importer.batch_to_dict(b), "created_at_dt": b.created_at}
        for b in importer.list_batches(request_user())
    ]
    return render_template("imports/history.html", batches=batches, modes=MODE_LABELS)


@bp.route("/contacts/imports/<batch>/revert", methods=["POST"])
def revert(batch: str) -> Any:
    try:
        result = importer.revert_import(batch, request_user(), SOURCE)
    except CrmError as exc:
        flash(translate(exc.message), "error")
    else:
        flash(
            _(
                "Import reverted: %(deleted)s contacts deleted, %(restored)s restored, %(notes)s notes "
                "removed, %(kept)s left as they are.",
                deleted=result["deleted"],
                restored=result["restored"],
                notes=result["notes_removed"],
                kept=len(result["kept"]),
            ),
            "success",
        )
        for kept in result["kept"][:20]:
            flash(f"{kept['contact']}: {translate(kept['reason'])}", "error")
    return redirect(url_for("import_pages.history"))
