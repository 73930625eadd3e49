"""Column names: the canonical import fields, and the headers of common exports mapped onto them.

A CSV column maps to one *field* (a string):

* a contact field of the API's JSON shape: ``first_name``, ``last_name``, ``name``, ``salutation``,
  ``job_title``, ``department``, ``birthday``, ``origin``, ``description``, ``website``, ``language``,
  ``status``, ``is_supplier``, ``visibility``, ``do_not_email``, ``role``, ``kind``, ``external_id``;
* ``number`` (the contact number, used only to match existing contacts);
* ``email`` (a work address) or ``email.<label>`` (``email.home``, ``email.other``); several columns
  may map to it and a cell may hold several addresses separated by ``;``, ``,`` or `` ::: ``;
* ``phone`` (work), ``mobile``, or ``phone.<type>`` for any phone type of the list (``phone.home``,
  ``phone.fax``...); repeatable like ``email``;
* the main address: ``street``, ``street2``, ``postal_code``, ``city``, ``region``, ``country``
  (a code or a name, in English or French); another address: ``address.<kind>.<part>``
  (``address.personal.city``);
* ``organization``: the name of the person's organization, found (same name) or created, and linked;
* ``tags`` (separated by ``,`` or ``;``), ``notes`` (each cell becomes an internal note);
* ``custom.<key>`` for a custom field, ``social.<network>`` for a social profile URL;
* helpers for other applications' exports: ``full_name`` (split when first and last name are
  missing), ``birth_year``/``birth_month``/``birth_day``, and ``email_label``/``phone_label``/
  ``address_label`` (Google's "E-mail 1 - Label", applied to the value column of the same number);
* ``""``: ignore the column.

:func:`suggest` maps a header line automatically (canonical names, Google Contacts current and legacy,
Outlook in English and French, Thunderbird, custom field keys and labels); ``--map COLUMN=FIELD``
(:func:`parse_overrides`) changes any of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crmcore.contributions import FieldDef
from crmcore.errors import ValidationError
from crmcore.services.text import fold

SCALARS = (
    "kind",
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
    "status",
    "is_supplier",
    "visibility",
    "do_not_email",
    "role",
    "external_id",
    "number",
    "organization",
)
ADDRESS_PARTS = ("street", "street2", "postal_code", "city", "region", "country")
ADDRESS_KINDS = ("main", "billing", "shipping", "other", "personal")
EMAIL_LABELS = ("work", "home", "other")
REPEATABLE = ("email", "phone", "mobile", "tags", "notes")
HELPERS = (
    "full_name",
    "birth_year",
    "birth_month",
    "birth_day",
    "email_label",
    "phone_label",
    "address_label",
)
#: Every plain field name (the dotted families are checked by :func:`check_field`).
FIELDS = (*SCALARS, *ADDRESS_PARTS, *REPEATABLE, *HELPERS)
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Column:
    """One column of the file: its position (0-based), header, field ("" = ignored) and group.

    ``group`` ties the columns of one numbered block of an export together ("E-mail 2 - Label" and
    "E-mail 2 - Value", "Address 1 - City" and "Address 1 - Street"): labels apply within a group and
    each address group is its own address.
    """

    index: int
    header: str
    field: str
    group: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "header": self.header, "field": self.field or None, "group": self.group}


def normalize(header: str) -> str:
    """Lowercase, no accents, punctuation as spaces: "Pays/Région (bureau)" -> "pays region bureau"."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", fold(header.replace("\ufeff", ""))).split())


def check_field(field: str, custom_fields: dict[str, FieldDef], phone_types: Iterable[str]) -> str | None:
    """None when ``field`` is a field a column can map to, else why not."""
    if field == "" or field in FIELDS:
        return None
    head, _, rest = field.partition(".")
    if head == "custom":
        if rest in custom_fields:
            return None
        known = ", ".join(sorted(custom_fields)) or "none is defined"
        return f"{field!r}: no such custom field (known: {known})"
    if head == "social":
        return None if _KEY.match(rest) else f"{field!r}: social networks are lowercase names"
    if head == "email":
        return None if rest in EMAIL_LABELS else f"{field!r}: email labels are {', '.join(EMAIL_LABELS)}"
    if head == "phone":
        types = sorted(phone_types)
        return None if rest in types else f"{field!r}: phone types are {', '.join(types)}"
    if head == "address":
        kind, _, part = rest.partition(".")
        if kind in ADDRESS_KINDS and part in ADDRESS_PARTS:
            return None
        return f"{field!r}: write address.<kind>.<part>, kind in {', '.join(ADDRESS_KINDS)}, part in {', '.join(ADDRESS_PARTS)}"
    return f"{field!r} is not an import field (known: {', '.join(FIELDS)}, custom.<key>, phone.<type>, ...)"


# -- automatic mapping --------------------------------------------------------------------------------

#: Normalized header -> field (a tuple: successive columns with that header take the next field).
ALIASES: dict[str, str | tuple[str, ...]] = {}


def _alias(field: str | tuple[str, ...], *headers: str) -> None:
    for header in headers:
        ALIASES[normalize(header)] = field


# Generic names, English and French.
_alias("first_name", "First Name", "Firstname", "Given Name", "Prénom", "Prenom")
_alias("last_name", "Last Name", "Lastname", "Surname", "Family Name", "Nom", "Nom de famille")
_alias("full_name", "Name", "Full Name", "Display Name", "Nom complet", "Contact", "Contact name")
_alias("salutation", "Salutation", "Civilité", "Civilite", "Name Prefix", "Prefix")
_alias(("salutation", "job_title"), "Title", "Titre")
_alias("job_title", "Job Title", "Position", "Fonction", "Poste", "Occupation", "Profession")
_alias("job_title", "Organization Title")
_alias("department", "Department", "Service", "Département", "Organization Department")
_alias("organization", "Company", "Organization", "Organisation", "Société", "Societe", "Entreprise")
_alias("organization", "Organization Name", "Company Name", "Raison sociale")
_alias("email", "Email", "E-mail", "Mail", "Courriel", "Email Address", "E-mail Address", "Primary Email")
_alias("email", "E-mail 2 Address", "E-mail 3 Address", "Secondary Email", "Adresse de messagerie")
_alias("email", "Adresse de messagerie 2", "Adresse de messagerie 3", "Adresse e-mail", "Adresse email")
_alias("phone", "Phone", "Telephone", "Téléphone", "Tel", "Work Phone", "Business Phone", "Business Phone 2")
_alias("phone", "Primary Phone", "Company Main Phone", "Other Phone", "Téléphone (bureau)")
_alias("phone", "Téléphone 2 (bureau)", "Téléphone société", "Téléphone principal", "Téléphone (autre)")
_alias("phone", "Téléphone travail", "Tel. travail")
_alias("mobile", "Mobile", "Mobile Phone", "Mobile Number", "Cell", "Cell Phone", "Portable")
_alias("mobile", "Tél. mobile", "Téléphone mobile", "Téléphone portable", "Car Phone", "Téléphone (voiture)")
_alias("phone.home", "Home Phone", "Home Phone 2", "Téléphone (domicile)", "Téléphone 2 (domicile)")
_alias("phone.home", "Téléphone domicile")
_alias("phone.fax", "Fax", "Fax Number", "Business Fax", "Home Fax", "Other Fax", "Télécopie")
_alias("phone.fax", "Télécopie (bureau)", "Télécopie (domicile)", "Télécopie (autre)")
_alias("street", "Street", "Address", "Adresse", "Rue", "Address 1", "Adresse 1", "Street 1")
_alias("street2", "Street 2", "Address 2", "Adresse 2", "Complément d'adresse", "Address Line 2")
_alias("postal_code", "Postal Code", "Postcode", "Zip", "Zip Code", "ZipCode", "Code postal", "CP")
_alias("city", "City", "Town", "Ville", "Commune")
_alias("region", "Region", "Région", "State", "Province", "Département (adresse)")
_alias("country", "Country", "Pays", "Country/Region", "Pays/Région")
_alias(
    "tags", "Tags", "Tag", "Labels", "Categories", "Catégories", "Étiquettes", "Groups", "Group Membership"
)
_alias("notes", "Notes", "Note", "Comments", "Comment", "Commentaire", "Commentaires", "Remarques")
_alias("birthday", "Birthday", "Birth Date", "Date of Birth", "DOB", "Date de naissance", "Anniversaire")
_alias("website", "Website", "Web Site", "Web Page", "Web Page 1", "URL", "Site web", "Site internet")
_alias("website", "Page Web", "Site")
_alias("external_id", "External ID", "ID externe", "Identifiant externe")
_alias("number", "Number", "Contact number", "Numéro", "Numéro de contact")
_alias("language", "Language", "Langue")
_alias("birth_year", "Birth Year")
_alias("birth_month", "Birth Month")
_alias("birth_day", "Birth Day")
# Outlook (English and French) and Thunderbird addresses.
_ADDRESS_FAMILIES = {
    "main": ("Business", "Work", "(bureau)"),
    "personal": ("Home", "(domicile)"),
    "other": ("Other", "(autre)"),
}
for _kind, _words in _ADDRESS_FAMILIES.items():
    _prefix = "" if _kind == "main" else f"address.{_kind}."
    for _word in _words:
        if _word.startswith("("):
            _alias(_prefix + "street", f"Rue {_word}")
            _alias(_prefix + "street2", f"Rue {_word} 2")
            _alias(_prefix + "city", f"Ville {_word}")
            _alias(_prefix + "region", f"Dép/Région {_word}")
            _alias(_prefix + "postal_code", f"Code postal {_word}")
            _alias(_prefix + "country", f"Pays/Région {_word}")
        else:
            _alias(_prefix + "street", f"{_word} Street", f"{_word} Address")
            _alias(_prefix + "street2", f"{_word} Street 2", f"{_word} Address 2")
            _alias(_prefix + "city", f"{_word} City")
            _alias(_prefix + "region", f"{_word} State", f"{_word} Region")
            _alias(_prefix + "postal_code", f"{_word} Postal Code", f"{_word} ZipCode", f"{_word} Zip")
            _alias(_prefix + "country", f"{_word} Country", f"{_word} Country/Region")
# Canonical names written with spaces or dashes ("First name", "postal-code") are caught by normalize();
# "name" alone is ambiguous (Google's legacy "Name" is a person's full name): only exactly "name" is.
for _field in FIELDS:
    ALIASES.setdefault(normalize(_field), _field)

#: Google Contacts' numbered blocks: "E-mail 1 - Value", "Phone 2 - Label", "Address 1 - City"...
_GOOGLE = re.compile(
    r"^(e mail|phone|address|website|organization|relation|event|im|custom field) (\d+) (.+)$"
)
_GOOGLE_PARTS = {
    "e mail": {"value": "email", "label": "email_label", "type": "email_label"},
    "phone": {"value": "phone", "label": "phone_label", "type": "phone_label"},
    "address": {
        "label": "address_label",
        "type": "address_label",
        "street": "street",
        "extended address": "street2",
        "city": "city",
        "region": "region",
        "postal code": "postal_code",
        "country": "country",
    },
    "website": {"value": "website"},
    "organization": {"name": "organization", "title": "job_title", "department": "department"},
}


def _google(normal: str) -> tuple[str, str] | None:
    match = _GOOGLE.match(normal)
    if not match:
        return None
    family, number, part = match.groups()
    field = _GOOGLE_PARTS.get(family, {}).get(part, "")
    return field, f"{family.replace(' ', '')}{number}"


def suggest(headers: Sequence[str], custom_fields: dict[str, FieldDef] | None = None) -> list[Column]:
    """The automatic mapping of a header line: every column with its field ("" when unknown)."""
    custom = _custom_names(custom_fields or {})
    taken: dict[str, int] = {}
    columns = []
    for index, header in enumerate(headers):
        raw = header.replace("\ufeff", "").strip()
        normal = normalize(raw)
        group = ""
        field: str | tuple[str, ...] | None
        if raw in FIELDS or raw.startswith(("custom.", "social.", "phone.", "email.", "address.")):
            field = raw
        elif normal in custom:
            field = custom[normal]
        elif (google := _google(normal)) is not None:
            field, group = google
        else:
            field = ALIASES.get(normal, "")
        if isinstance(field, tuple):
            seen = taken.get(normal, 0)
            taken[normal] = seen + 1
            field = field[min(seen, len(field) - 1)]
        columns.append(Column(index, header, field, group))
    return columns


def _custom_names(custom_fields: dict[str, FieldDef]) -> dict[str, str]:
    names: dict[str, str] = {}
    for key, field_def in custom_fields.items():
        labels = [field_def.label] if isinstance(field_def.label, str) else list(field_def.label.values())
        for name in (key, *labels):
            names.setdefault(normalize(name), f"custom.{key}")
    return names


def parse_overrides(items: Iterable[str]) -> list[tuple[str, str]]:
    """``["Société=organization", "@3=", ...]`` -> ``[(column, field)]``; an empty field ignores the column."""
    out = []
    for item in items:
        column, sep, field = item.partition("=")
        if not sep or not column.strip():
            raise ValidationError(
                {"map": [f"{item!r}: write COLUMN=FIELD (an empty FIELD ignores the column)"]}
            )
        out.append((column.strip(), field.strip()))
    return out


def apply_overrides(
    columns: list[Column],
    overrides: Iterable[tuple[str, str]],
    custom_fields: dict[str, FieldDef],
    phone_types: Iterable[str],
) -> list[Column]:
    """Change the field of the columns named in ``overrides``: by header (exact, then normalized) or by
    position (``@1`` is the first column). Raises ValidationError for an unknown column or field."""
    errors: list[str] = []
    result = list(columns)
    phone_types = list(phone_types)
    for name, field in overrides:
        problem = check_field(field, custom_fields, phone_types)
        if problem:
            errors.append(problem)
            continue
        targets = _find(result, name)
        if not targets:
            errors.append(f"{name!r}: no such column (columns: {', '.join(c.header for c in result)})")
        for index in targets:
            column = result[index]
            result[index] = Column(column.index, column.header, field, column.group)
    if errors:
        raise ValidationError({"map": errors})
    return result


def _find(columns: list[Column], name: str) -> list[int]:
    if re.fullmatch(r"@\d+", name):
        position = int(name[1:]) - 1
        return [position] if 0 <= position < len(columns) else []
    exact = [i for i, c in enumerate(columns) if c.header.replace("\ufeff", "").strip() == name]
    if exact:
        return exact
    return [i for i, c in enumerate(columns) if normalize(c.header) == normalize(name)]
