"""The contact form: HTML form fields <-> the API's JSON shape that the services take.

Form field names (also the element ids) follow the error paths of the services so an error lands
beside its field: ``phones[1].number`` -> ``phones-1-number``, ``custom.size`` -> ``custom-size``.
The form is rebuilt from what was submitted, so nothing typed is lost when the services refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from crmcore.contributions import FieldDef
from crmcore.extensions import db
from crmcore.models import Contact, User
from crmcore.services import access
from crmcore.services.contacts import KINDS
from crmcore.services.fields import fields_for
from crmcore.services.history import CONSENT_FLAGS
from crmcore.services.serialize import contact_to_dict
from crmcore.services.text import fold
from crmcore.web.labels import SOCIAL_NETWORKS

SCALARS = (
    "salutation",
    "first_name",
    "last_name",
    "name",
    "job_title",
    "department",
    "birthday",
    "origin",
    "description",
    "website",
    "language",
    "country",
    "external_id",
    "status",
    "visibility",
    "role",
)
FLAGS = ("is_supplier", "do_not_email", "notify_owners")
PERSON_ONLY = ("salutation", "first_name", "last_name", "job_title", "department", "birthday", "role")
ORGANIZATION_ONLY = ("name",)
EMAIL_PARTS = ("address", "label", "primary", "accepts_email")
PHONE_PARTS = ("number", "type", *CONSENT_FLAGS)
ADDRESS_PARTS = ("kind", "street", "street2", "postal_code", "city", "region", "country")
_ROW = re.compile(r"^(emails|phones|addresses)-(\d{1,4})-(\w+)$")
_PATH = re.compile(r"^(\w+)\[(\d+)\](?:\.(\w+))?$")
#: Error paths whose input has another id.
_INPUT_IDS = {
    "organization_id": "organization",
    "reports_to_id": "reports_to",
    "emails": "emails-section",
    "phones": "phones-section",
    "addresses": "addresses-section",
    "social": "website",
    "custom": "custom-fields",
    "_record": "contact-form",
}


def input_id(path: str) -> str:
    """The id of the input an error path belongs to: ``phones[1].number`` -> ``phones-1-number``."""
    if path in _INPUT_IDS:
        return _INPUT_IDS[path]
    match = _PATH.match(path)
    if match:
        head, index, part = match.groups()
        if head == "tags":
            return "tags"
        return f"{head}-{index}-{part}" if part else f"{head}-{index}"
    if path.startswith(("custom.", "social.")):
        return path.replace(".", "-", 1)
    return path


def blank_form(kind: str, user: User | None) -> dict[str, Any]:
    """The form of a new contact: the creator is its responsible, the configured default visibility
    (``CRM_DEFAULT_VISIBILITY``), prospect."""
    return {
        "kind": kind if kind in KINDS else "person",
        **{field: "" for field in SCALARS},
        "status": "prospect",
        "visibility": current_app.config.get("DEFAULT_VISIBILITY") or "public_read",
        **{flag: False for flag in FLAGS},
        "emails": [],
        "phones": [],
        "addresses": [],
        "social": {},
        "tags": "",
        "owners": [user.id] if user is not None else [],
        "team_id": "",
        "organization_id": "",
        "organization": "",
        "reports_to_id": "",
        "reports_to": "",
        "custom": {},
        "version": "",
    }


def _label_of(contact_id: int | None) -> str:
    if not contact_id:
        return ""
    contact = db.session.get(Contact, contact_id)
    return contact.display_name if contact is not None else ""


def form_from_contact(contact: Contact) -> dict[str, Any]:
    data = contact_to_dict(contact)
    form: dict[str, Any] = {"kind": contact.kind}
    for field in SCALARS:
        form[field] = data[field] if data[field] is not None else ""
    for flag in FLAGS:
        form[flag] = bool(data[flag])
    form["emails"] = [dict(e) for e in data["emails"]]
    form["phones"] = [dict(p) for p in data["phones"]]
    form["addresses"] = [{k: v or "" for k, v in a.items()} for a in data["addresses"]]
    form["social"] = dict(data["social"])
    form["tags"] = ", ".join(data["tags"])
    form["owners"] = list(data["owners"])
    form["team_id"] = data["team_id"] or ""
    form["organization_id"] = data["organization_id"] or ""
    form["organization"] = contact.organization.display_name if contact.organization else ""
    form["reports_to_id"] = data["reports_to_id"] or ""
    form["reports_to"] = contact.reports_to.display_name if contact.reports_to else ""
    form["custom"] = dict(data["custom"])
    form["version"] = data["version"]
    return form


def _rows(form: MultiDict[str, str], group: str) -> dict[int, dict[str, str]]:
    rows: dict[int, dict[str, str]] = {}
    for key in form:
        match = _ROW.match(key)
        if match and match.group(1) == group:
            rows.setdefault(int(match.group(2)), {})[match.group(3)] = form.get(key, "").strip()
    return dict(sorted(rows.items()))


def form_from_request(form: MultiDict[str, str], fields: dict[str, FieldDef]) -> dict[str, Any]:
    """The submitted form, as typed (strings), in the shape the template renders."""
    kind = form.get("kind", "person")
    out: dict[str, Any] = {"kind": kind if kind in KINDS else "person"}
    for field in SCALARS:
        out[field] = form.get(field, "").strip()
    for flag in FLAGS:
        out[flag] = bool(form.get(flag))
    primary = form.get("emails-primary")
    out["emails"] = [
        {
            "address": row.get("address", ""),
            "label": row.get("label", "work"),
            "primary": primary == str(index),
            "accepts_email": bool(row.get("accepts_email")),
        }
        for index, row in _rows(form, "emails").items()
        if row.get("address")
    ]
    out["phones"] = [
        {
            "number": row.get("number", ""),
            "type": row.get("type", "mobile"),
            **{flag: bool(row.get(flag)) for flag in CONSENT_FLAGS},
        }
        for row in _rows(form, "phones").values()
        if row.get("number")
    ]
    out["addresses"] = [
        {part: row.get(part, "") for part in ADDRESS_PARTS}
        for row in _rows(form, "addresses").values()
        if any(row.get(part) for part in ADDRESS_PARTS if part != "kind")
    ]
    networks = list(SOCIAL_NETWORKS) + [
        key[7:] for key in form if key.startswith("social-") and key[7:] not in SOCIAL_NETWORKS
    ]
    out["social"] = {
        n: form.get(f"social-{n}", "").strip() for n in networks if form.get(f"social-{n}", "").strip()
    }
    out["tags"] = ", ".join(t for t in (v.strip() for v in form.getlist("tags")) if t)
    out["owners"] = [int(v) for v in form.getlist("owners") if v.isdigit()]
    for field in ("team_id", "organization_id", "reports_to_id", "version"):
        out[field] = form.get(field, "").strip()
    out["organization"] = form.get("organization", "").strip()
    out["reports_to"] = form.get("reports_to", "").strip()
    custom: dict[str, Any] = {}
    for field_def in fields.values():
        name = f"custom-{field_def.key}"
        if field_def.type == "multi_choice":
            custom[field_def.key] = [v for v in form.getlist(name) if v]
        else:
            custom[field_def.key] = form.get(name, "").strip()
    out["custom"] = custom
    return out


def _int_or_none(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 11 else None


def resolve_contact(
    label: str, contact_id: Any, kind: str, user: User | None, field: str, errors: dict[str, list[str]]
) -> int | None:
    """The id chosen with the autocomplete, else the one contact whose name is exactly what was typed."""
    if not label:
        return None
    chosen = _int_or_none(contact_id)
    if chosen is not None:
        return chosen
    from crmcore.services.contact_query import search_condition

    condition = search_condition(label)
    candidates = (
        db.session.scalars(
            select(Contact)
            .where(
                condition if condition is not None else Contact.id.is_(None),
                Contact.kind == kind,
                Contact.deleted_at.is_(None),
                access.visible_filter(user),
            )
            .order_by(Contact.id)
            .limit(50)
        )
        if condition is not None
        else []
    )
    matches = [c.id for c in candidates if fold(c.display_name) == fold(label)]
    if len(matches) == 1:
        return matches[0]
    errors.setdefault(field, []).append(
        "several contacts have this name; pick one in the list"
        if matches
        else "no contact has exactly this name; pick one in the list"
    )
    return None


def data_from_form(
    form: Mapping[str, Any], fields: dict[str, FieldDef], user: User | None, creating: bool
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The API-shaped data for the services, and the errors found before reaching them."""
    errors: dict[str, list[str]] = {}
    kind = form["kind"]
    data: dict[str, Any] = {"kind": kind}
    for field in SCALARS:
        data[field] = form[field] or None
    for flag in FLAGS:
        data[flag] = bool(form[flag])
    if kind == "organization":
        for field in PERSON_ONLY:
            data[field] = None
    else:
        for field in ORGANIZATION_ONLY:
            data[field] = None
    data["status"] = form["status"] or "prospect"
    data["visibility"] = form["visibility"] or None  # none chosen: the service's default applies
    data["emails"] = [dict(e) for e in form["emails"]]
    data["phones"] = [dict(p) for p in form["phones"]]
    data["addresses"] = [{k: (v or None) for k, v in a.items()} for a in form["addresses"]]
    data["social"] = dict(form["social"])
    data["tags"] = [t.strip() for t in form["tags"].split(",") if t.strip()]
    if form["owners"] or not creating:
        data["owners"] = list(form["owners"])  # a new contact without responsibles gets its creator
    team = form["team_id"]
    data["team_id"] = _int_or_none(team)
    if team and data["team_id"] is None:
        errors["team_id"] = ["this team does not exist"]
    if kind == "person":
        data["organization_id"] = resolve_contact(
            form["organization"], form["organization_id"], "organization", user, "organization_id", errors
        )
        data["reports_to_id"] = resolve_contact(
            form["reports_to"], form["reports_to_id"], "person", user, "reports_to_id", errors
        )
    else:
        data["organization_id"] = None
        data["reports_to_id"] = None
    custom: dict[str, Any] = {}
    for field_def in fields_for(kind, fields):
        value = form["custom"].get(field_def.key)
        if value in ("", [], None):
            if not creating:
                custom[field_def.key] = None  # cleared in the form: removed from the contact
            continue
        custom[field_def.key] = value
    data["custom"] = custom
    return data, errors
