"""Contact pages: the list (cards or table) with mass actions, the form, the contact page.

Views are thin: they turn the request into service calls (with ``request_user()`` and
``source="ui"``) and render templates. Access is decided by the services.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from crmcore.auth import request_user
from crmcore.errors import Conflict, CrmError, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, ContactPhoto, Tag
from crmcore.services import access, bulk, notes, photos, users
from crmcore.services import contacts as svc
from crmcore.services.contact_query import SORTS, list_contacts, related_contacts
from crmcore.services.contributions import contact_actions, mass_actions, render_tabs
from crmcore.services.fields import all_fields, fields_for
from crmcore.services.transactions import transaction
from crmcore.web.contact_form import (
    blank_form,
    data_from_form,
    form_from_contact,
    form_from_request,
    input_id,
    resolve_contact,
)
from crmcore.web.labels import country_choices, lang
from crmcore.web.messages import translate, translate_errors

bp = Blueprint("contact_pages", __name__)

SOURCE = "ui"
VIEWS = ("cards", "list")
FILTERS = ("q", "kind", "status", "tag", "owner")


def _safe_next(target: str | None, fallback: str) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return fallback


def _user() -> Any:
    return request_user()


# -- list ------------------------------------------------------------------------------------------


@bp.route("/contacts")
def index() -> Any:
    user = _user()
    view = request.args.get("view")
    if view in VIEWS:
        session["contacts_view"] = view
    view = session.get("contacts_view", "list")
    args = {key: request.args.get(key, "").strip() for key in FILTERS}
    sort = request.args.get("sort", "name")
    if sort.lstrip("-") not in SORTS:
        sort = "name"
    owner = int(args["owner"]) if args["owner"].isdigit() and len(args["owner"]) < 11 else None
    cursor = request.args.get("cursor") or None
    error = None
    try:
        page = list_contacts(
            user,
            q=args["q"] or None,
            kind=args["kind"] or None,
            status=args["status"] or None,
            tag=args["tag"] or None,
            owner=owner,
            sort=sort,
            cursor=cursor,
            deleted=request.args.get("deleted") == "1",
        )
    except ValidationError as exc:
        error = "; ".join(
            f"{key}: {m}" for key, messages in translate_errors(exc.errors).items() for m in messages
        )
        page = None
    items = page.items if page else []
    ids = [c.id for c in items]
    with_photo = (
        set(db.session.scalars(select(ContactPhoto.contact_id).where(ContactPhoto.contact_id.in_(ids))))
        if ids
        else set()
    )
    organization_ids = {c.organization_id for c in items if c.organization_id}
    organizations = (
        {
            row.id: row.display_name
            for row in db.session.execute(
                select(Contact.id, Contact.display_name).where(Contact.id.in_(organization_ids))
            )
        }
        if organization_ids
        else {}
    )
    base = {k: v for k, v in args.items() if v}
    if request.args.get("deleted") == "1":
        base["deleted"] = "1"

    def url_with(**changes: Any) -> str:
        params = {**base, "sort": sort, **changes}
        return url_for("contact_pages.index") + "?" + urlencode({k: v for k, v in params.items() if v})

    return render_template(
        "contacts/list.html",
        view=view,
        page=page,
        items=items,
        error=error,
        args=args,
        sort=sort,
        url_with=url_with,
        with_photo=with_photo,
        organizations=organizations,
        # Names only: counting the contacts of every tag on each list page would read the whole link table.
        tag_names=list(db.session.scalars(select(Tag.name).order_by(Tag.key))),
        users=[u for u in users.list_users() if u.active],
        statuses=svc.STATUSES,
        kinds=svc.KINDS,
        plugin_actions=mass_actions(user),
        cursor=cursor,
        show_deleted=request.args.get("deleted") == "1",
        here=request.full_path.rstrip("?"),
    )


@bp.route("/contacts/mass", methods=["POST"])
def mass() -> Any:
    user = _user()
    back = _safe_next(request.form.get("next"), url_for("contact_pages.index"))
    ids = [int(v) for v in request.form.getlist("ids") if v.isdigit() and len(v) < 11]
    action = request.form.get("action", "")
    if action == "export":
        if not ids:
            flash(_("Select at least one contact."), "error")
            return redirect(back)
        return redirect(
            "/api/v1/contacts/export?" + urlencode({"format": "csv", "ids": ",".join(map(str, ids))})
        )
    if action.startswith("plugin:"):
        return _plugin_mass_action(action, ids, back)
    if action == "merge":
        from crmcore.web.duplicates import mass_merge

        return mass_merge(ids, back)
    owner = request.form.get("owner", "")
    try:
        result = bulk.apply(
            action,
            ids,
            user,
            SOURCE,
            tag=request.form.get("tag"),
            owner=int(owner) if owner.isdigit() and len(owner) < 11 else None,
            status=request.form.get("status"),
        )
    except ValidationError as exc:
        for key, messages in translate_errors(exc.errors).items():
            for message in messages:
                flash(f"{_mass_field(key)}: {message}", "error")
        return redirect(back)
    changed = len(result.changed)
    flash(
        ngettext("%(num)d contact changed.", "%(num)d contacts changed.", changed)
        + (
            " "
            + ngettext(
                "%(num)d was already up to date.", "%(num)d were already up to date.", len(result.unchanged)
            )
            if result.unchanged
            else ""
        ),
        "success" if changed or not result.refused else "error",
    )
    if result.refused:
        flash(
            ngettext("%(num)d contact refused:", "%(num)d contacts refused:", len(result.refused))
            + " "
            + "; ".join(f"{r.label} ({translate(r.reason)})" for r in result.refused),
            "error",
        )
    return redirect(back)


def _plugin_mass_action(choice: str, ids: list[int], back: str) -> Any:
    """Send the selection to a plugin's mass action: GET with ``ids`` in the query, POST re-posted (307)."""
    _prefix, plugin_name, key = (choice.split(":", 2) + ["", ""])[:3]
    for plugin, action in mass_actions(_user()):
        if plugin == plugin_name and action.key == key:
            break
    else:
        flash(_("This action is no longer available."), "error")
        return redirect(back)
    if not ids:
        flash(_("Select at least one contact."), "error")
        return redirect(back)
    if action.method == "POST":
        return redirect(action.url, code=307)  # the browser posts the same form (ids, CSRF token) there
    separator = "&" if "?" in action.url else "?"
    return redirect(action.url + separator + urlencode([("ids", i) for i in ids]), code=303)


def _mass_field(key: str) -> str:
    return {
        "action": _("Action"),
        "ids": _("Selection"),
        "tag": _("Tag"),
        "owner": _("Responsible"),
        "status": _("Status"),
    }.get(key, key)


# -- form ------------------------------------------------------------------------------------------


def _render_form(
    form: dict[str, Any],
    contact: Contact | None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    photo_lost: bool = False,
) -> Any:
    fields = all_fields()
    errors = translate_errors(errors or {})
    field_errors: dict[str, list[str]] = {}
    for path, messages in errors.items():
        field_errors.setdefault(input_id(path), []).extend(messages)
    has_photo = contact is not None and db.session.get(ContactPhoto, contact.id) is not None
    return render_template(
        "contacts/form.html",
        form=form,
        contact=contact,
        errors=errors,
        field_errors=field_errors,
        input_id=input_id,
        custom_fields={kind: fields_for(kind, fields) for kind in svc.KINDS},
        all_custom=sorted(fields.values(), key=lambda f: (f.order, f.key)),
        users=[u for u in users.list_users() if u.active or u.id in form["owners"]],
        teams=users.list_teams(),
        statuses=svc.STATUSES,
        visibilities=svc.VISIBILITIES,
        email_labels=svc.EMAIL_LABELS,
        address_kinds=svc.ADDRESS_KINDS,
        countries=country_choices(),
        has_photo=has_photo,
        photo_lost=photo_lost,
    ), status


def _photo_upload() -> bytes | None:
    upload = request.files.get("photo")
    if upload is None or not upload.filename:
        return None
    return upload.read()


def _save(contact: Contact | None) -> Any:
    user = _user()
    fields = all_fields()
    form = form_from_request(request.form, fields)
    data, errors = data_from_form(form, fields, user, creating=contact is None)
    photo = _photo_upload()
    if photo is not None:
        try:
            photos.normalise_image(photo)
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        return _render_form(form, contact, errors, 422, photo_lost=photo is not None)
    try:
        with transaction():
            if contact is None:
                saved = svc.create_contact(data, user, SOURCE, fields=fields)
            else:
                version = int(form["version"]) if str(form["version"]).isdigit() else None
                saved = svc.update_contact(
                    contact.id, data, user, SOURCE, expected_version=version, fields=fields
                )
            if photo is not None:
                photos.set_photo(saved.id, photo, user, SOURCE)
            elif contact is not None and request.form.get("remove_photo"):
                photos.delete_photo(saved.id, user, SOURCE)
    except ValidationError as exc:
        return _render_form(form, contact, exc.errors, 422, photo_lost=photo is not None)
    except Conflict as exc:
        return _render_form(form, contact, {"_record": [exc.message]}, 409, photo_lost=photo is not None)
    if request.form.get("next") == "new":
        flash(_("%(name)s saved. You can create the next one.", name=saved.display_name), "success")
        return redirect(url_for("contact_pages.new", kind=saved.kind))
    flash(_("%(name)s saved.", name=saved.display_name), "success")
    return redirect(url_for("contact_pages.show", contact_id=saved.id))


@bp.route("/contacts/new", methods=["GET", "POST"])
def new() -> Any:
    if request.method == "POST":
        return _save(None)
    user = _user()
    form = blank_form(request.args.get("kind", "person"), user)
    organization_id = request.args.get("organization_id", type=int)
    if organization_id and form["kind"] == "person":
        # "New person" from an organization's page: the person starts in it.
        organization = svc.get_contact(organization_id, user)
        if organization.kind == "organization":
            form["organization_id"], form["organization"] = organization.id, organization.display_name
    return _render_form(form, None)


@bp.route("/contacts/<id:contact_id>/edit", methods=["GET", "POST"])
def edit(contact_id: int) -> Any:
    contact = svc.get_contact(contact_id, _user(), "write")
    if request.method == "POST":
        return _save(contact)
    return _render_form(form_from_contact(contact), contact)


# -- contact page ------------------------------------------------------------------------------------


def _show(contact_id: int, status: int = 200) -> Any:
    user = _user()
    contact = svc.get_contact(contact_id, user, include_deleted=True)
    can_write = access.can(contact, user, "write")
    tabs = render_tabs(contact, user, lang())
    keys = ["details", *[t.key for t in tabs]]
    active = request.args.get("tab") or g.get("crm_active_tab") or "details"
    if active not in keys:
        active = "details"
    members = (
        list_contacts(user, organization_id=contact.id, limit=100).items
        if contact.kind == "organization"
        else []
    )
    actions = []
    for plugin, action in contact_actions(contact, user):
        actions.append({"plugin": plugin, "action": action})
    return render_template(
        "contacts/show.html",
        contact=contact,
        can_write=can_write,
        tabs=tabs,
        active_tab=active,
        members=members,
        related=related_contacts(contact, user, limit=20),
        warnings=svc.warnings_of(contact),
        actions=actions,
        has_photo=db.session.get(ContactPhoto, contact.id) is not None,
        custom_fields=fields_for(contact.kind),
        warning_form=g.get("crm_warning_form") or {},
        member_form=g.get("crm_member_form") or {},
    ), status


@bp.route("/contacts/<id:contact_id>")
def show(contact_id: int) -> Any:
    return _show(contact_id)


@bp.route("/contacts/<id:contact_id>/members", methods=["POST"])
def add_member(contact_id: int) -> Any:
    """Link a person to this organization from its page (the person's own form does the same)."""
    user = _user()
    organization = svc.get_contact(contact_id, user)
    label = request.form.get("person", "").strip()
    chosen = request.form.get("person_id", type=int)
    errors: dict[str, list[str]] = {}
    person_id = resolve_contact(label, chosen, "person", user, "person", errors) if label else None
    if person_id is None and not errors:
        errors["person"] = [_("Type a few letters and pick the person.")]
    if not errors:
        try:
            person = svc.update_contact(
                person_id,
                {"organization_id": organization.id, "role": request.form.get("role") or None},
                user,
                SOURCE,
            )
        except CrmError as exc:
            errors = getattr(exc, "errors", None) or {"person": [exc.message]}
        else:
            flash(
                _(
                    "%(person)s now belongs to %(organization)s.",
                    person=person.display_name,
                    organization=organization.display_name,
                ),
                "success",
            )
            return redirect(url_for("contact_pages.show", contact_id=organization.id))
    g.crm_member_form = {
        "person": label,
        "role": request.form.get("role", ""),
        "errors": translate_errors(errors),
    }
    return _show(organization.id, 422)


@bp.route("/contacts/<id:contact_id>/members/<id:person_id>/remove", methods=["POST"])
def remove_member(contact_id: int, person_id: int) -> Any:
    user = _user()
    organization = svc.get_contact(contact_id, user)
    person = svc.get_contact(person_id, user, "write")
    if person.organization_id != organization.id:
        abort(404)
    svc.update_contact(person.id, {"organization_id": None, "role": None}, user, SOURCE)
    flash(
        _(
            "%(person)s no longer belongs to %(organization)s.",
            person=person.display_name,
            organization=organization.display_name,
        ),
        "success",
    )
    return redirect(url_for("contact_pages.show", contact_id=organization.id))


@bp.route("/contacts/<id:contact_id>/photo")
def photo(contact_id: int) -> Any:
    found = photos.get_photo(contact_id, _user())
    if found is None:
        abort(404)
    return Response(found.data, mimetype=found.content_type, headers={"Cache-Control": "private, max-age=60"})


@bp.route("/contacts/<id:contact_id>/delete", methods=["POST"])
def delete(contact_id: int) -> Any:
    contact = svc.delete_contact(contact_id, _user(), SOURCE)
    flash(_("%(name)s was deleted. You can restore it from this page.", name=contact.display_name), "success")
    return redirect(url_for("contact_pages.show", contact_id=contact_id))


@bp.route("/contacts/<id:contact_id>/restore", methods=["POST"])
def restore(contact_id: int) -> Any:
    try:
        contact = svc.restore_contact(contact_id, _user(), SOURCE)
    except Conflict as exc:
        flash(translate(exc.message), "error")
    else:
        flash(_("%(name)s was restored.", name=contact.display_name), "success")
    return redirect(url_for("contact_pages.show", contact_id=contact_id))


@bp.route("/contacts/<id:contact_id>/notes", methods=["POST"])
def add_note(contact_id: int) -> Any:
    body = request.form.get("body", "")
    kind = request.form.get("kind", "internal")
    try:
        notes.add_note(contact_id, body, kind, _user(), SOURCE)
    except ValidationError as exc:
        g.crm_note_form = {"body": body, "kind": kind, "errors": translate_errors(exc.errors)}
        g.crm_active_tab = "notes"
        return _show(contact_id, 422)
    flash(_("Note added."), "success")
    return redirect(url_for("contact_pages.show", contact_id=contact_id, tab="notes"))


@bp.route("/contacts/<id:contact_id>/warnings", methods=["POST"])
def add_warning(contact_id: int) -> Any:
    message = request.form.get("message", "")
    level = request.form.get("level", "info")
    try:
        svc.add_warning(contact_id, message, level, _user(), SOURCE)
    except ValidationError as exc:
        g.crm_warning_form = {"message": message, "level": level, "errors": translate_errors(exc.errors)}
        return _show(contact_id, 422)
    flash(_("Warning added."), "success")
    return redirect(url_for("contact_pages.show", contact_id=contact_id))


@bp.route("/contacts/<id:contact_id>/warnings/<id:warning_id>/delete", methods=["POST"])
def remove_warning(contact_id: int, warning_id: int) -> Any:
    svc.remove_warning(contact_id, warning_id, _user(), SOURCE)
    flash(_("Warning removed."), "success")
    return redirect(url_for("contact_pages.show", contact_id=contact_id))
