"""Administration pages (admins only): users, teams, configurable lists, custom fields, tags, message
templates, plugins."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from crmcore.auth import request_user
from crmcore.contributions import localize
from crmcore.errors import CrmError, Forbidden, ValidationError
from crmcore.services import fields, lookups, message_templates, tags, users
from crmcore.services.plugin_report import full_report
from crmcore.web.labels import ui
from crmcore.web.messages import translate, translate_errors

bp = Blueprint("admin_pages", __name__, url_prefix="/admin")

#: URL slug -> configurable list name.
LISTS = {"salutations": "salutation", "origins": "origin", "roles": "role", "phone-types": "phone_type"}


@bp.before_request
def _admins_only() -> None:
    user = request_user()
    if user is None or not user.is_admin:
        raise Forbidden("this page is for administrators")


def _ids(name: str) -> list[int]:
    return [int(v) for v in request.form.getlist(name) if v.isdigit() and len(v) < 11]


def _int(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.lstrip("-").isdigit() and len(text) < 11 else None


def _flash_error(exc: CrmError) -> None:
    if isinstance(exc, ValidationError):
        for key, messages in translate_errors(exc.errors).items():
            for message in messages:
                flash(f"{key}: {message}" if key != "_record" else message, "error")
    else:
        flash(translate(exc.message), "error")


@bp.route("")
def index() -> Any:
    return render_template("admin/index.html", lists=LISTS)


# -- users ---------------------------------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
def users_page() -> Any:
    errors: dict[str, list[str]] = {}
    form: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        try:
            user = users.create_user(
                form.get("email", ""),
                form.get("password") or None,
                is_admin=bool(form.get("is_admin")),
                name=form.get("name", ""),
                language=form.get("language") or None,
            )
            if _ids("teams"):
                users.update_user(user.id, team_ids=_ids("teams"))
        except ValidationError as exc:
            errors, status = translate_errors(exc.errors), 422
        except CrmError as exc:
            errors, status = (
                {getattr(exc, "details", {}).get("field") or "_record": [translate(exc.message)]},
                409,
            )
        else:
            flash(_("User %(email)s created.", email=user.email), "success")
            return redirect(url_for("admin_pages.users_page"))
    return render_template(
        "admin/users.html", users=users.list_users(), teams=users.list_teams(), form=form, errors=errors
    ), status


@bp.route("/users/<id:user_id>", methods=["POST"])
def update_user(user_id: int) -> Any:
    me = request_user()
    target = users.get_user(user_id)
    active = bool(request.form.get("active"))
    is_admin = bool(request.form.get("is_admin"))
    if me is not None and target.id == me.id and (not active or not is_admin):
        flash(_("You cannot deactivate yourself or remove your own administrator rights."), "error")
        return redirect(url_for("admin_pages.users_page"))
    try:
        users.update_user(
            user_id,
            name=request.form.get("name"),
            is_admin=is_admin,
            active=active,
            team_ids=_ids("teams"),
        )
    except CrmError as exc:
        _flash_error(exc)
    else:
        flash(_("User %(email)s updated.", email=target.email), "success")
    return redirect(url_for("admin_pages.users_page"))


# -- teams ---------------------------------------------------------------------------------------


@bp.route("/teams", methods=["GET", "POST"])
def teams_page() -> Any:
    if request.method == "POST":
        try:
            team = users.create_team(request.form.get("name", ""))
        except CrmError as exc:
            _flash_error(exc)
        else:
            flash(_("Team %(name)s created.", name=team.name), "success")
        return redirect(url_for("admin_pages.teams_page"))
    return render_template("admin/teams.html", teams=users.list_teams())


@bp.route("/teams/<id:team_id>/delete", methods=["POST"])
def delete_team(team_id: int) -> Any:
    try:
        users.delete_team(team_id)
    except CrmError as exc:
        _flash_error(exc)
    else:
        flash(_("Team deleted."), "success")
    return redirect(url_for("admin_pages.teams_page"))


# -- configurable lists ----------------------------------------------------------------------------


def _list_name(slug: str) -> str:
    if slug not in LISTS:
        abort(404)
    return LISTS[slug]


@bp.route("/<slug>", methods=["GET", "POST"])
def lookup_page(slug: str) -> Any:
    list_name = _list_name(slug)
    if request.method == "POST":
        try:
            value = lookups.create(
                list_name,
                request.form.get("label_en", ""),
                request.form.get("label_fr") or None,
                request.form.get("key") or None,
            )
        except CrmError as exc:
            _flash_error(exc)
        else:
            flash(_("%(label)s added.", label=value.label_en), "success")
        return redirect(url_for("admin_pages.lookup_page", slug=slug))
    return render_template(
        "admin/lookups.html", slug=slug, list_name=list_name, values=lookups.values(list_name), lists=LISTS
    )


@bp.route("/<slug>/<key>", methods=["POST"])
def lookup_update(slug: str, key: str) -> Any:
    list_name = _list_name(slug)
    try:
        if request.form.get("action") == "delete":
            lookups.delete(list_name, key)
            flash(_("%(key)s deleted.", key=key), "success")
        else:
            lookups.update(
                list_name,
                key,
                label_en=request.form.get("label_en"),
                label_fr=request.form.get("label_fr"),
                position=_int(request.form.get("position")),
            )
            flash(_("%(key)s updated.", key=key), "success")
    except CrmError as exc:
        _flash_error(exc)
    return redirect(url_for("admin_pages.lookup_page", slug=slug))


# -- custom fields -------------------------------------------------------------------------------


def _field_data(form: Any) -> dict[str, Any]:
    choices = [
        c.strip() for line in form.get("choices", "").splitlines() for c in line.split(",") if c.strip()
    ]
    return {
        "key": form.get("key", "").strip(),
        "label_en": form.get("label_en", "").strip(),
        "label_fr": form.get("label_fr", "").strip() or None,
        "type": form.get("type", "text"),
        "kinds": form.getlist("kinds"),
        "required": bool(form.get("required")),
        "choices": choices,
        "help": form.get("help", "").strip() or None,
        "max_length": _int(form.get("max_length")),
        "position": _int(form.get("position")),
    }


@bp.route("/fields", methods=["GET", "POST"])
def fields_page() -> Any:
    errors: dict[str, list[str]] = {}
    form: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        data = _field_data(request.form)
        form = {**data, "choices": request.form.get("choices", "")}
        try:
            row = fields.create_definition({k: v for k, v in data.items() if v is not None})
        except ValidationError as exc:
            errors, status = translate_errors(exc.errors), 422
        except CrmError as exc:
            errors, status = {exc.details.get("field") or "_record": [translate(exc.message)]}, 409
        else:
            flash(_("Custom field %(key)s created.", key=row.key), "success")
            return redirect(url_for("admin_pages.fields_page"))
    definitions = [fields.definition_to_dict(f) for f in fields.all_fields().values()]
    return render_template("admin/fields.html", definitions=definitions, form=form, errors=errors), status


@bp.route("/fields/<key>", methods=["GET", "POST"])
def field_edit(key: str) -> Any:
    row = fields.get_definition(key)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        if request.form.get("action") == "delete":
            fields.delete_definition(key)
            flash(_("Custom field %(key)s deleted.", key=key), "success")
            return redirect(url_for("admin_pages.fields_page"))
        data = _field_data(request.form)
        data.pop("key")
        data.pop("type")
        if data["position"] is None:
            data.pop("position")
        try:
            fields.update_definition(key, data)
        except ValidationError as exc:
            errors, status = translate_errors(exc.errors), 422
        except CrmError as exc:
            errors, status = {"_record": [translate(exc.message)]}, 409
        else:
            flash(_("Custom field %(key)s updated.", key=key), "success")
            return redirect(url_for("admin_pages.fields_page"))
    return render_template("admin/field_edit.html", row=row, errors=errors), status


# -- tags ----------------------------------------------------------------------------------------


@bp.route("/tags", methods=["GET", "POST"])
def tags_page() -> Any:
    if request.method == "POST":
        try:
            tag = tags.create_tag(request.form.get("name", ""))
        except CrmError as exc:
            _flash_error(exc)
        else:
            flash(_("Tag %(name)s created.", name=tag.name), "success")
        return redirect(url_for("admin_pages.tags_page"))
    return render_template("admin/tags.html", tags=tags.list_tags())


@bp.route("/tags/<id:tag_id>", methods=["POST"])
def tag_update(tag_id: int) -> Any:
    try:
        if request.form.get("action") == "delete":
            tags.delete_tag(tag_id, request_user(), "ui")
            flash(_("Tag deleted."), "success")
        else:
            tag = tags.rename_tag(tag_id, request.form.get("name", ""), request_user(), "ui")
            flash(_("Tag renamed to %(name)s.", name=tag.name), "success")
    except CrmError as exc:
        _flash_error(exc)
    return redirect(url_for("admin_pages.tags_page"))


@bp.route("/tags/merge", methods=["POST"])
def tags_merge() -> Any:
    target = _int(request.form.get("target_id"))
    try:
        if target is None:
            raise ValidationError({"target_id": ["choose the tag to keep"]})
        tag = tags.merge_tags(_ids("source_ids"), target, request_user(), "ui")
    except CrmError as exc:
        _flash_error(exc)
    else:
        flash(_("Tags merged into %(name)s.", name=tag.name), "success")
    return redirect(url_for("admin_pages.tags_page"))


# -- message templates -----------------------------------------------------------------------------


def _template_data(form: Any) -> dict[str, Any]:
    return {
        "key": form.get("key", "").strip(),
        "channel": form.get("channel", ""),
        "language": form.get("language", ""),
        "name": form.get("name", "").strip(),
        "subject": form.get("subject", "").strip() or None,
        "body": form.get("body", ""),
    }


def _template_context(**context: Any) -> dict[str, Any]:
    from crmcore.state import crm_state

    channels = crm_state().channels
    return {
        "channels": {key: localize(channel.label, ui.lang()) for key, channel in sorted(channels.items())},
        "subject_channels": sorted(key for key, channel in channels.items() if channel.has_subject),
        "languages": message_templates.LANGUAGES,
        "placeholders": message_templates.CONTACT_PLACEHOLDERS,
        **context,
    }


@bp.route("/message-templates", methods=["GET", "POST"])
def message_templates_page() -> Any:
    errors: dict[str, list[str]] = {}
    form: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = _template_data(request.form)
        try:
            row = message_templates.create_template(form, request_user())
        except ValidationError as exc:
            errors, status = translate_errors(exc.errors), 422
        except CrmError as exc:
            errors, status = {"_record": [translate(exc.message)]}, exc.status
        else:
            flash(_("Message template %(key)s created.", key=row.key), "success")
            return redirect(url_for("admin_pages.message_templates_page"))
    rows = message_templates.list_templates(channel=request.args.get("channel") or None)
    return render_template(
        "admin/message_templates.html",
        **_template_context(rows=rows, form=form, errors=errors, channel_filter=request.args.get("channel")),
    ), status


@bp.route("/message-templates/<id:template_id>", methods=["GET", "POST"])
def message_template_edit(template_id: int) -> Any:
    row = message_templates.get_template(template_id)
    errors: dict[str, list[str]] = {}
    form = message_templates.template_to_dict(row)
    status = 200
    if request.method == "POST":
        form = _template_data(request.form)
        try:
            message_templates.update_template(template_id, form, request_user())
        except ValidationError as exc:
            errors, status = translate_errors(exc.errors), 422
        except CrmError as exc:
            errors, status = {"_record": [translate(exc.message)]}, exc.status
        else:
            flash(_("Message template %(key)s updated.", key=form["key"]), "success")
            return redirect(url_for("admin_pages.message_templates_page"))
    return render_template(
        "admin/message_template_edit.html", **_template_context(row=row, form=form, errors=errors)
    ), status


@bp.route("/message-templates/<id:template_id>/delete", methods=["POST"])
def message_template_delete(template_id: int) -> Any:
    row = message_templates.get_template(template_id)
    key = row.key
    message_templates.delete_template(template_id, request_user())
    flash(_("Message template %(key)s deleted.", key=key), "success")
    return redirect(url_for("admin_pages.message_templates_page"))


# -- plugins -------------------------------------------------------------------------------------


@bp.route("/plugins")
def plugins_page() -> Any:
    return render_template("admin/plugins.html", plugins=full_report())
