"""Built-in plugin: envelopes as PDF (reportlab), the address laid out to its country's conventions.

* ``GET /api/v1/contacts/<id>/envelope.pdf?size=DL|C5|C6[&kind=main]``: one envelope;
* ``GET /api/v1/envelopes.pdf?ids=1&ids=2&size=C5``: one page per selected contact;
* ``GET|PUT /api/v1/envelope/sender``: the sender printed top left. An admin sets it here; until then
  it comes from the ``CRM_ENVELOPE_SENDER_NAME``, ``_STREET``, ``_STREET2``, ``_POSTAL_CODE``, ``_CITY``,
  ``_REGION`` and ``_COUNTRY`` settings (``CRM_ENVELOPE_SENDER_LANGUAGE`` overrides the language
  guessed from the sender's country).

Conventions (:func:`address_lines`): France (NF Z 10-011: complement above the street, ``POSTCODE CITY``
in capitals), United Kingdom (post town in capitals, postcode on its own line), United States,
Canada and Australia (``CITY STATE ZIP`` in capitals), Germany and the rest of Europe (``PLZ Ort``).
Abroad, the last line is the country's name in the sender's language, in capitals (UPU). A contact
without a usable address (street, city and, where required, postcode) gets a 422 naming it.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.builtin.selection import selected_ids
from crmcore.plugin_api import Action, Contact, User, UTCDateTime, db, hookimpl, utcnow

MM = 72 / 25.4
#: Envelope sizes (ISO 269), landscape, in millimetres: width, height, and where the recipient block starts
#: (left, top) so it shows through a standard window.
SIZES: dict[str, tuple[float, float, float, float]] = {
    "DL": (220, 110, 110, 52),
    "C5": (229, 162, 115, 80),
    "C6": (162, 114, 78, 56),
}
ADDRESS_ORDER = ("main", "personal", "billing", "shipping", "other")
#: Countries whose addresses are not deliverable without a postcode.
POSTCODE_REQUIRED = {"FR", "DE", "GB", "US", "CA", "AU", "NL", "BE", "ES", "IT", "CH", "AT", "PT", "LU"}
SENDER_FIELDS = ("name", "street", "street2", "postal_code", "city", "region", "country")
LANGUAGES = {"US": "en", "GB": "en", "AU": "en", "CA": "en", "IE": "en"}
_COMPLEMENT_AFTER_STREET = re.compile(r"^(bp|cs|tsa|cedex|lieu[- ]dit)\b", re.IGNORECASE)


class EnvelopeSender(db.Model):
    """The sender an admin set (one row); the ``CRM_ENVELOPE_SENDER_*`` settings apply until then."""

    __tablename__ = "envelope_sender"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    street: Mapped[str | None] = mapped_column(String(300))
    street2: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    city: Mapped[str | None] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(120))
    country: Mapped[str | None] = mapped_column(String(2))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


@dataclass
class Sender:
    name: str | None = None
    street: str | None = None
    street2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    source: str = "settings"

    def to_dict(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in SENDER_FIELDS}, "source": self.source}


def sender() -> Sender:
    """The admin-set sender, else the one from the settings (country defaults to ``CRM_DEFAULT_COUNTRY``)."""
    row = db.session.get(EnvelopeSender, 1)
    if row is not None:
        return Sender(**{name: getattr(row, name) for name in SENDER_FIELDS}, source="admin")
    config = current_app.config
    values = {name: config.get(f"ENVELOPE_SENDER_{name.upper()}") or None for name in SENDER_FIELDS}
    values["country"] = (values["country"] or config.get("DEFAULT_COUNTRY") or "").upper() or None
    return Sender(**values)


def set_sender(data: dict[str, Any], user: User | None) -> Sender:
    """Store the sender (admins only); empty values clear a line."""
    from crmcore.errors import Forbidden, ValidationError
    from crmcore.services.territories import is_country
    from crmcore.services.transactions import transaction

    if user is not None and not user.is_admin:
        raise Forbidden("only an administrator can change the envelope sender")
    if not isinstance(data, dict):
        raise ValidationError({"_record": ["send a JSON object with the sender's fields"]})
    errors: dict[str, list[str]] = {}
    limits = {"name": 200, "street": 300, "street2": 300, "postal_code": 20, "city": 120, "region": 120}
    clean: dict[str, str | None] = {}
    for key in data:
        if key not in SENDER_FIELDS:
            errors.setdefault(key, []).append(f"unknown field; expected: {', '.join(SENDER_FIELDS)}")
    for name in SENDER_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            errors.setdefault(name, []).append("must be a string")
            continue
        text = (value or "").strip() or None
        if name == "country" and text:
            text = text.upper()
            if not is_country(text):
                errors.setdefault(name, []).append(f"{text!r} is not an ISO country code (FR, GB, US...)")
        elif text and len(text) > limits[name]:
            errors.setdefault(name, []).append(f"must be at most {limits[name]} characters")
        clean[name] = text
    if not clean.get("name"):
        errors.setdefault("name", []).append("is required")
    if errors:
        raise ValidationError(errors)
    with transaction():
        row = db.session.get(EnvelopeSender, 1)
        if row is None:
            row = EnvelopeSender(id=1)
            db.session.add(row)
        for name, value in clean.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        row.updated_by_id = user.id if user else None
    return sender()


# -- layout -----------------------------------------------------------------------------------------


def _language(country: str | None) -> str:
    explicit = current_app.config.get("ENVELOPE_SENDER_LANGUAGE")
    if explicit:
        return str(explicit).lower()
    if country in LANGUAGES:
        return LANGUAGES[country]
    if country:
        from babel.languages import get_official_languages

        official = get_official_languages(country)
        if official:
            return official[0]
    return str(current_app.config.get("DEFAULT_LANGUAGE") or "en")


def country_line(country: str, language: str) -> str:
    from crmcore.services.territories import country_name

    return country_name(country, language).upper()


def _join(*parts: str | None) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def address_lines(names: list[str], address: Any, sender_country: str | None, language: str) -> list[str]:
    """The recipient block: ``names`` then the address, to the conventions of the address's country."""
    get = address.get if isinstance(address, dict) else lambda key: getattr(address, key)
    country = (get("country") or sender_country or "").upper() or None
    street, street2 = get("street"), get("street2")
    postal_code, city, region = get("postal_code"), get("city"), get("region")
    lines = [n for n in names if n]
    if country == "FR":
        # NF Z 10-011: the complement (building, floor) comes above the street; BP, CS, lieu-dit below.
        if street2 and not _COMPLEMENT_AFTER_STREET.match(street2):
            lines += [street2, street]
        else:
            lines += [street, street2]
        lines.append(_join(postal_code, (city or "").upper()))
    elif country == "GB" or country == "IE":
        lines += [street, street2, (city or "").upper(), region if country == "IE" else None]
        lines.append((postal_code or "").upper())
    elif country in ("US", "CA", "AU"):
        lines += [street, street2]
        lines.append(_join(city, region, postal_code).upper())
    else:
        lines += [street, street2, _join(postal_code, city)]
        if region and country not in ("DE", "AT", "CH", "NL", "BE", "LU"):
            lines.append(region)
    if country and sender_country and country != sender_country:
        lines.append(country_line(country, language))
    return [" ".join(line.split()) for line in lines if line and line.strip()]


def sender_lines(value: Sender, language: str, abroad: bool = False) -> list[str]:
    """The sender block; with its country line when the letter goes abroad (so it can come back)."""
    if not value.name and not value.street:
        return []
    lines = address_lines([value.name or ""], value.__dict__, value.country, language)
    if abroad and value.country:
        lines.append(country_line(value.country, language))
    return lines


def _names(contact: Contact, kind: str, language: str, country: str | None) -> list[str]:
    from crmcore.services import lookups

    if contact.kind == "organization":
        return [contact.name or contact.display_name]
    salutation = ""
    if contact.salutation:
        for value in lookups.values("salutation"):
            if value.key == contact.salutation:
                salutation = value.label_fr if language == "fr" else value.label_en
    person = _join(salutation, contact.first_name, contact.last_name)
    organization = contact.organization.name if contact.organization and kind != "personal" else None
    if organization and country == "FR":
        return [organization, person]  # a business letter in France: the company first
    return [person, organization or ""]


def pick_address(contact: Contact, kind: str | None = None) -> Any:
    """The address to print, or a ValidationError saying what is missing."""
    from crmcore.errors import ValidationError

    candidates = [a for a in contact.addresses if kind is None or a.kind == kind]
    candidates.sort(key=lambda a: ADDRESS_ORDER.index(a.kind) if a.kind in ADDRESS_ORDER else 99)
    label = f"{contact.display_name} ({contact.number})"
    if not candidates:
        what = f"no {kind} address" if kind else "no postal address"
        raise ValidationError({"address": [f"{label} has {what}"]}, message=f"{label} has {what}")
    problems = []
    for address in candidates:
        missing = [
            name
            for name, ok in (
                ("a street", bool(address.street or address.street2)),
                ("a city", bool(address.city)),
                (
                    "a postal code",
                    bool(address.postal_code) or (address.country or "") not in POSTCODE_REQUIRED,
                ),
            )
            if not ok
        ]
        if not missing:
            return address
        problems.append(f"its {address.kind} address lacks {' and '.join(missing)}")
    message = f"{label} has no usable postal address: {'; '.join(problems)}"
    raise ValidationError({"address": [message]}, message=message)


# -- PDF --------------------------------------------------------------------------------------------


def _font() -> tuple[str, str]:
    """DejaVu Sans when the system has it (every European script), else Helvetica (Latin-1 only)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "CrmSans" in pdfmetrics.getRegisteredFontNames():
        return "CrmSans", "CrmSans-Bold"
    folder = "/usr/share/fonts/truetype/dejavu"
    regular, bold = os.path.join(folder, "DejaVuSans.ttf"), os.path.join(folder, "DejaVuSans-Bold.ttf")
    if os.path.exists(regular) and os.path.exists(bold):
        pdfmetrics.registerFont(TTFont("CrmSans", regular))
        pdfmetrics.registerFont(TTFont("CrmSans-Bold", bold))
        return "CrmSans", "CrmSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _fit(canvas: Any, lines: list[str], font: str, size: float, width: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    widest = max((stringWidth(line, font, size) for line in lines), default=0)
    return size if widest <= width else max(6.0, size * width / widest)


def render(pages: list[tuple[list[str], list[str]]], size: str) -> bytes:
    """A PDF with one envelope per ``(sender lines, recipient lines)``."""
    from reportlab.pdfgen.canvas import Canvas

    width, height, left, top = SIZES[size]
    regular, bold = _font()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(width * MM, height * MM), pageCompression=1)
    canvas.setTitle(f"Envelopes {size}")
    canvas.setCreator("crmcore")
    for sender_block, recipient in pages:
        if sender_block:
            font_size = _fit(canvas, sender_block, regular, 8, (left - 15) * MM)
            y = (height - 10) * MM - font_size
            for line in sender_block:
                canvas.setFont(regular, font_size)
                canvas.drawString(10 * MM, y, line)
                y -= font_size * 1.25
        font_size = _fit(canvas, recipient, regular, 11, (width - left - 8) * MM)
        y = (height - top) * MM - font_size
        for index, line in enumerate(recipient):
            canvas.setFont(bold if index == 0 else regular, font_size)
            canvas.drawString(left * MM, y, line)
            y -= font_size * 1.3
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def envelopes_pdf(contacts: list[Contact], size: str = "DL", kind: str | None = None) -> bytes:
    """One page per contact; a ValidationError lists every contact without a usable address."""
    from crmcore.errors import ValidationError

    if size not in SIZES:
        raise ValidationError({"size": [f"must be one of: {', '.join(SIZES)}"]})
    origin = sender()
    language = _language(origin.country)
    pages: list[tuple[list[str], list[str]]] = []
    errors: dict[str, list[str]] = {}
    for index, contact in enumerate(contacts):
        try:
            address = pick_address(contact, kind)
        except ValidationError as exc:
            key = "address" if len(contacts) == 1 else f"ids[{index}]"
            errors.setdefault(key, []).extend(exc.errors["address"])
            continue
        country = (address.country or origin.country or "").upper() or None
        names = _names(contact, address.kind, language, country)
        abroad = bool(country and origin.country and country != origin.country)
        pages.append(
            (sender_lines(origin, language, abroad), address_lines(names, address, origin.country, language))
        )
    if errors:
        first = next(iter(errors.values()))[0]
        message = (
            first
            if len(contacts) == 1
            else f"{len(errors)} of {len(contacts)} contacts have no usable address"
        )
        raise ValidationError(errors, message=message)
    return render(pages, size)


# -- contributions and routes -------------------------------------------------------------------------


@hookimpl
def contact_actions(contact: Contact) -> list[Action]:
    if not any(a.street and a.city for a in contact.addresses):
        return []
    return [
        Action(
            key="print_envelope",
            label={"en": "Print envelope", "fr": "Imprimer l'enveloppe"},
            url=f"/api/v1/contacts/{contact.id}/envelope.pdf?size=DL",
            icon="mail",
            order=70,
        )
    ]


@hookimpl
def register_mass_actions() -> list[Action]:
    return [
        Action(
            key="print_envelopes",
            label={"en": "Print envelopes", "fr": "Imprimer les enveloppes"},
            url="/api/v1/envelopes.pdf?size=DL",
            icon="mail",
            order=70,
        )
    ]


blueprint = Blueprint("builtin_envelope", __name__)


def _size() -> str:
    from crmcore.errors import ValidationError

    size = (request.args.get("size") or "DL").strip().upper()
    if size not in SIZES:
        raise ValidationError({"size": [f"must be one of: {', '.join(SIZES)}"]})
    return size


def _kind() -> str | None:
    from crmcore.errors import ValidationError
    from crmcore.services.contacts import ADDRESS_KINDS

    kind = request.args.get("kind") or None
    if kind is not None and kind not in ADDRESS_KINDS:
        raise ValidationError({"kind": [f"must be one of: {', '.join(ADDRESS_KINDS)}"]})
    return kind


def _pdf(body: bytes, filename: str) -> Response:
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}.pdf"'},
    )


@blueprint.get("/api/v1/contacts/<id:contact_id>/envelope.pdf")
def envelope(contact_id: int) -> Response:
    from crmcore.auth import request_user
    from crmcore.services.contacts import get_contact

    size, kind = _size(), _kind()
    contact = get_contact(contact_id, request_user())
    return _pdf(envelopes_pdf([contact], size, kind), f"envelope-{contact.number}")


@blueprint.get("/api/v1/envelopes.pdf")
def envelopes() -> Response:
    from crmcore.auth import request_user
    from crmcore.errors import ValidationError
    from crmcore.services.contacts import get_contact

    size, kind = _size(), _kind()
    ids = selected_ids()
    if not ids:
        raise ValidationError({"ids": ["select at least one contact (ids=1&ids=2 or ids=1,2)"]})
    if len(ids) > 2000:
        raise ValidationError({"ids": ["at most 2000 envelopes at once"]})
    user = request_user()
    contacts = [get_contact(contact_id, user) for contact_id in ids]
    return _pdf(envelopes_pdf(contacts, size, kind), f"envelopes-{size}")


@blueprint.get("/api/v1/envelope/sender")
def get_sender() -> Response:
    return jsonify(sender().to_dict())


@blueprint.put("/api/v1/envelope/sender")
def put_sender() -> Response:
    from crmcore.auth import request_user

    return jsonify(set_sender(request.get_json(silent=True), request_user()).to_dict())


@hookimpl
def register_blueprints() -> list[Blueprint]:
    return [blueprint]
