"""Contact services: create, update, delete, restore, status, warnings. The only writers of contacts.

Each public function validates, checks access, writes, audits and fires the plugin hooks in one
transaction (:func:`crmcore.services.transactions.transaction`).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload

from crmcore.contributions import FieldDef, Problem
from crmcore.errors import BlockedContact, Conflict, NotFound, PreconditionFailed, ValidationError
from crmcore.extensions import db
from crmcore.models import (
    Contact,
    ContactAddress,
    ContactEmail,
    ContactPhone,
    ContactWarning,
    HistoryEntry,
    SearchToken,
    Team,
    User,
    contact_owners,
    contact_tags,
    user_id_of,
    utcnow,
)
from crmcore.services import access, history, reference, search_index
from crmcore.services.bulk_insert import insert_tuples
from crmcore.services.fields import EMAIL_RE, URL_RE, clean_custom
from crmcore.services.numbering import next_contact_numbers
from crmcore.services.phones import InvalidPhone, national_digits, to_e164
from crmcore.services.serialize import READ_ONLY, audited_state, contact_to_dict
from crmcore.services.tags import resolve_tag_ids, resolve_tags, tag_key
from crmcore.services.territories import is_country, is_language
from crmcore.services.text import fold
from crmcore.services.transactions import transaction
from crmcore.state import plugin_host

KINDS = ("person", "organization")
STATUSES = ("prospect", "customer", "user")
VISIBILITIES = ("private", "public_read", "public_write")
EMAIL_LABELS = ("work", "home", "other")
ADDRESS_KINDS = ("main", "billing", "shipping", "other", "personal")
SOURCES = ("ui", "api", "import", "web_form", "inbound", "cli", "system", "merge")
_SOCIAL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,29}$")

#: Text fields and their maximum length (the schema enforces the same limits).
TEXT_FIELDS = {
    "salutation": 40,
    "first_name": 200,
    "last_name": 200,
    "name": 300,
    "job_title": 200,
    "department": 200,
    "origin": 60,
    "description": 20000,
    "website": 500,
    "external_id": 255,
    "role": 60,
}

EAGER = (
    selectinload(Contact.emails),
    selectinload(Contact.phones),
    selectinload(Contact.addresses),
    selectinload(Contact.tags),
    selectinload(Contact.owners),
)


# -- reading ---------------------------------------------------------------------------------------


def get_contact(
    contact_id: int, user: User | None = None, mode: access.Mode = "read", include_deleted: bool = False
) -> Contact:
    """The contact ``contact_id`` if ``user`` may read (or write) it; NotFound otherwise."""
    contact = db.session.get(Contact, contact_id, options=EAGER) if isinstance(contact_id, int) else None
    if contact is None or (contact.deleted_at is not None and not include_deleted):
        raise NotFound(f"contact {contact_id} not found")
    access.check(contact, user, mode)
    return contact


def contacts_by_ids(ids: list[int]) -> list[Contact]:
    """The contacts ``ids`` in that order (one query; their lists not loaded), for whoever wrote them."""
    found = {c.id: c for c in db.session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def ensure_not_blocked(contact: Contact, purpose: str) -> None:
    """Raise :class:`BlockedContact` when ``contact`` has a blocking warning.

    Plugins call this before creating appointments, opportunities, quotes, invoices or
    messages for a contact; ``purpose`` (e.g. "create an invoice") appears in the message.
    """
    blocking = db.session.scalars(
        select(ContactWarning.message).where(
            ContactWarning.contact_id == contact.id, ContactWarning.level == "blocking"
        )
    ).all()
    if blocking:
        raise BlockedContact(
            f"cannot {purpose} for {contact.display_name}: {'; '.join(blocking)}",
            contact_id=contact.id,
            warnings=list(blocking),
        )


# -- validation ------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class ValidationCache:
    """What validation reads from the database (custom fields, lists, users, teams), read once and shared
    by many validations in a row (an import chunk). Each validation without one makes its own."""

    def __init__(self, fields: dict[str, FieldDef] | None = None) -> None:
        data = reference.current()
        self.fields = fields if fields is not None else data.fields
        #: list name -> {key, folded labels -> key}
        self.lookups: dict[str, dict[str, str]] = data.names
        self.users: dict[int, bool] = {}
        self.teams: dict[int, bool] = {}
        #: Contacts that links (organization, reports-to) may point to, known to exist: the importer
        #: puts the organizations it found or created here (``id``, ``kind``, ``deleted_at`` suffice).
        self.contacts: dict[int, Any] = {}
        self.hooks = plugin_host().hook
        self.default_visibility = current_app.config.get("DEFAULT_VISIBILITY") or "public_read"
        self.default_country = current_app.config.get("DEFAULT_COUNTRY")


class _Cleaner:
    """Turns a prospective state (API shape) into clean values, collecting every error at once."""

    def __init__(
        self,
        state: dict[str, Any],
        contact: Contact | None,
        cache: ValidationCache,
        user: User | None = None,
    ) -> None:
        self.state = state
        self.contact = contact
        self.fields = cache.fields
        self.errors: dict[str, list[str]] = {}
        self.cache = cache
        if user is not None:
            cache.users.setdefault(user_id_of(user), True)  # the acting user exists: no query

    def error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def clean(self) -> dict[str, Any]:
        s = self.state
        out: dict[str, Any] = {}
        kind = s.get("kind")
        if kind not in KINDS:
            self.error("kind", "must be 'person' or 'organization'")
            kind = "person"
        out["kind"] = kind
        for field, limit in TEXT_FIELDS.items():
            value = _text(s.get(field))
            if value is not None and len(value) > limit:
                self.error(field, f"must be at most {limit} characters")
            out[field] = value
        if kind == "person" and not out["last_name"]:
            self.error("last_name", "is required for a person")
        if kind == "organization" and not out["name"]:
            self.error("name", "is required for an organization")
        self._lookup(out, "salutation", "salutation")
        self._lookup(out, "origin", "origin")
        self._lookup(out, "role", "role")
        if out["website"] and not URL_RE.match(out["website"]):
            if URL_RE.match("https://" + out["website"]):
                out["website"] = "https://" + out["website"]
            else:
                self.error("website", "must be a web address such as https://example.com")
        out["birthday"] = self._birthday(s.get("birthday"))
        out["social"] = self._social(s.get("social"))
        out["language"] = self._code("language", s.get("language"), is_language, lower=True)
        out["country"] = self._code("country", s.get("country"), is_country, lower=False)
        status = s.get("status") or "prospect"
        if status not in STATUSES:
            self.error("status", f"must be one of: {', '.join(STATUSES)}")
        out["status"] = status
        out["is_supplier"] = bool(s.get("is_supplier"))
        visibility = s.get("visibility") or self.cache.default_visibility
        if visibility not in VISIBILITIES:
            self.error("visibility", f"must be one of: {', '.join(VISIBILITIES)}")
        out["visibility"] = visibility
        out["do_not_email"] = bool(s.get("do_not_email"))
        out["notify_owners"] = bool(s.get("notify_owners"))
        region = out["country"] or self.cache.default_country
        out["emails"] = self._emails(s.get("emails") or [])
        out["phones"] = self._phones(s.get("phones") or [], region)
        out["addresses"] = self._addresses(s.get("addresses") or [])
        out["organization_id"] = self._organization(kind, s.get("organization_id"))
        out["reports_to_id"] = self._reports_to(kind, s.get("reports_to_id"))
        if kind == "organization" and out["role"]:
            self.error("role", "only a person has a role in an organization")
        out["tags"] = self._tags(s.get("tags") or [])
        out["owners"] = self._owners(s.get("owners") or [])
        out["team_id"] = self._team(s.get("team_id"))
        out["custom"] = clean_custom(
            kind,
            dict(self.contact.custom or {}) if self.contact else {},
            s.get("custom_changes"),
            self.errors,
            self.fields,
            region,
        )
        return out

    def _lookup(self, out: dict[str, Any], field: str, list_name: str) -> None:
        value = out.get(field)
        if value is None:
            return
        names = self._lookup_names(list_name)
        # A key, or a label as a person types it ("Mme", "Salon professionnel"): the key is stored.
        key = names.get(value) or names.get(fold(value))
        if key is None:
            self.error(field, f"{value!r} is not in the {list_name.replace('_', ' ')} list")
        out[field] = key

    def _lookup_names(self, list_name: str) -> dict[str, str]:
        """Key, and folded English and French labels -> key."""
        return self.cache.lookups.get(list_name, {})

    def _keys(self, list_name: str) -> set[str]:
        return set(self._lookup_names(list_name).values())

    def _birthday(self, value: Any) -> dt.date | None:
        if value in (None, ""):
            return None
        if isinstance(value, dt.date):
            day = value
        else:
            try:
                day = dt.date.fromisoformat(str(value))
            except ValueError:
                self.error("birthday", "must be a date (YYYY-MM-DD)")
                return None
        if day > dt.date.today():
            self.error("birthday", "cannot be in the future")
        return day

    def _social(self, value: Any) -> dict[str, str]:
        if not value:
            return {}
        if not isinstance(value, Mapping):
            self.error("social", "must be an object {network: url}")
            return {}
        out: dict[str, str] = {}
        for network, url in value.items():
            key = str(network).strip().lower()
            if not _SOCIAL_KEY.match(key):
                self.error(f"social.{network}", "network names are lowercase letters, digits and _")
                continue
            text = _text(url)
            if text is None:
                continue
            if len(text) > 500:
                self.error(f"social.{key}", "must be at most 500 characters")
                continue
            out[key] = text
        return out

    def _code(self, field: str, value: Any, check: Any, lower: bool) -> str | None:
        text = _text(value)
        if text is None:
            return None
        code = text.lower() if lower else text.upper()
        if not check(code):
            self.error(field, f"{text!r} is not a known {'language' if lower else 'country'} code")
            return None
        return code

    def _emails(self, items: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            where = f"emails[{index}]"
            address = _text(item.get("address"))
            if not address:
                self.error(f"{where}.address", "is required")
                continue
            if len(address) > 254 or not EMAIL_RE.match(address):
                self.error(f"{where}.address", f"{address[:80]!r} is not an email address")
                continue
            if address.lower() in seen:
                self.error(f"{where}.address", f"{address} is listed twice")
                continue
            seen.add(address.lower())
            label = item.get("label") or "work"
            if label not in EMAIL_LABELS:
                self.error(f"{where}.label", f"must be one of: {', '.join(EMAIL_LABELS)}")
            out.append(
                {
                    "address": address,
                    "label": label,
                    "primary": bool(item.get("primary")),
                    "accepts_email": bool(item.get("accepts_email")),
                }
            )
        primaries = [e for e in out if e["primary"]]
        if len(primaries) > 1:
            self.error("emails", "only one email can be primary")
        elif out and not primaries:
            out[0]["primary"] = True
        return out

    def _phones(self, items: list[Any], region: str | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        types = self._keys("phone_type")
        seen: set[str] = set()
        # A number already stored keeps its meaning when the contact's country changes later.
        stored = {phone.number: phone.e164 for phone in self.contact.phones} if self.contact else {}
        for index, item in enumerate(items):
            where = f"phones[{index}]"
            number = _text(item.get("number"))
            if not number:
                self.error(f"{where}.number", "is required")
                continue
            try:
                e164 = stored.get(number) or to_e164(number, region)
            except InvalidPhone as exc:
                self.error(f"{where}.number", str(exc))
                continue
            if e164 in seen:
                self.error(f"{where}.number", f"{number} is listed twice")
                continue
            seen.add(e164)
            phone_type = item.get("type") or "mobile"
            if phone_type not in types:
                self.error(
                    f"{where}.type", f"{phone_type!r} is not a phone type (known: {', '.join(sorted(types))})"
                )
            out.append(
                {
                    "number": number,
                    "e164": e164,
                    "type": phone_type,
                    **{flag: bool(item.get(flag)) for flag in history.CONSENT_FLAGS},
                }
            )
        return out

    def _addresses(self, items: list[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            where = f"addresses[{index}]"
            kind = item.get("kind") or "main"
            if kind not in ADDRESS_KINDS:
                self.error(f"{where}.kind", f"must be one of: {', '.join(ADDRESS_KINDS)}")
            address = {"kind": kind}
            for part, limit in (
                ("street", 300),
                ("street2", 300),
                ("postal_code", 20),
                ("city", 120),
                ("region", 120),
            ):
                value = _text(item.get(part))
                if value and len(value) > limit:
                    self.error(f"{where}.{part}", f"must be at most {limit} characters")
                address[part] = value
            address["country"] = self._code(f"{where}.country", item.get("country"), is_country, lower=False)
            if not any(address[p] for p in ("street", "street2", "postal_code", "city", "region", "country")):
                continue  # an empty block from a form is not an address
            out.append(address)
        return out

    def _other_contact(self, field: str, contact_id: Any) -> Contact | None:
        if contact_id is None:
            return None
        if isinstance(contact_id, bool) or not isinstance(contact_id, int):
            self.error(field, "must be a contact id")
            return None
        other = self.cache.contacts.get(contact_id)
        if other is None:
            other = db.session.get(Contact, contact_id)
        if other is None or other.deleted_at is not None:
            self.error(field, f"contact {contact_id} does not exist")
            return None
        if self.contact is not None and other.id == self.contact.id:
            self.error(field, "a contact cannot be linked to itself")
            return None
        return other

    def _organization(self, kind: str, organization_id: Any) -> int | None:
        organization = self._other_contact("organization_id", organization_id)
        if organization is None:
            return None
        if kind != "person":
            self.error("organization_id", "only a person belongs to an organization")
        elif organization.kind != "organization":
            self.error("organization_id", f"contact {organization.id} is a person, not an organization")
        return organization.id

    def _reports_to(self, kind: str, reports_to_id: Any) -> int | None:
        manager = self._other_contact("reports_to_id", reports_to_id)
        if manager is None:
            return None
        if kind != "person" or manager.kind != "person":
            self.error("reports_to_id", "reports-to links two people")
            return manager.id
        seen = {self.contact.id} if self.contact else set()
        current: Contact | None = manager
        while current is not None:
            if current.id in seen:
                self.error("reports_to_id", "this would make a reporting loop")
                break
            seen.add(current.id)
            current = current.reports_to
        return manager.id

    def _tags(self, names: list[Any]) -> list[str]:
        out: list[str] = []
        for index, name in enumerate(names):
            text = _text(name)
            if not text:
                continue
            if len(text) > 80:
                self.error(f"tags[{index}]", "must be at most 80 characters")
                continue
            if fold(text) not in {fold(t) for t in out}:
                out.append(text)
        return out

    def _owners(self, ids: list[Any]) -> list[int]:
        wanted = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
        if len(wanted) != len(ids):
            self.error("owners", "must be a list of user ids")
        known = self.cache.users
        missing = [i for i in wanted if i not in known]
        if missing:
            present = set(db.session.scalars(select(User.id).where(User.id.in_(missing))))
            known.update({i: i in present for i in missing})
        found = {i for i in wanted if known[i]}
        for user_id in wanted:
            if user_id not in found:
                self.error("owners", f"user {user_id} does not exist")
        return list(dict.fromkeys(wanted))

    def _team(self, team_id: Any) -> int | None:
        if team_id is None:
            return None
        if isinstance(team_id, bool) or not isinstance(team_id, int) or not self._team_exists(team_id):
            self.error("team_id", f"team {team_id} does not exist")
            return None
        return team_id

    def _team_exists(self, team_id: int) -> bool:
        if team_id not in self.cache.teams:
            self.cache.teams[team_id] = db.session.get(Team, team_id) is not None
        return self.cache.teams[team_id]


def _validate(
    state: dict[str, Any],
    contact: Contact | None,
    user: User | None,
    fields: dict[str, FieldDef] | None,
    cache: ValidationCache | None = None,
) -> dict[str, Any]:
    if cache is None:
        cache = ValidationCache(fields)
    elif fields is not None and fields is not cache.fields:
        cache = copy.copy(cache)
        cache.fields = fields
    cleaner = _Cleaner(state, contact, cache, user)
    clean = cleaner.clean()
    errors = cleaner.errors
    if not errors:
        # Plugins see the record exactly as it will be stored.
        preview = {**clean, "birthday": clean["birthday"].isoformat() if clean["birthday"] else None}
        for problems in cache.hooks.contact_validate(data=preview, contact=contact, user=user):
            for problem in [problems] if isinstance(problems, (Problem, str)) else problems or []:
                if isinstance(problem, Problem):
                    errors.setdefault(problem.field or "_record", []).append(problem.message)
                else:
                    errors.setdefault("_record", []).append(str(problem))
    if errors:
        raise ValidationError(errors)
    return clean


# -- writing ---------------------------------------------------------------------------------------


def _sync_children(
    existing: list[Any], wanted: list[dict[str, Any]], model: type, keys: tuple[str, ...]
) -> list[Any]:
    """Update child rows in place by position, add or drop the rest (keeps row ids stable)."""
    result = []
    for position, values in enumerate(wanted):
        row = existing[position] if position < len(existing) else model()
        for key in keys:
            setattr(row, key, values[key])
        row.position = position
        result.append(row)
    return result


#: Contact columns taken as they are from a clean state.
CLEAN_COLUMNS = (
    "kind",
    *TEXT_FIELDS,
    "birthday",
    "social",
    "language",
    "country",
    "status",
    "is_supplier",
    "visibility",
    "do_not_email",
    "notify_owners",
    "organization_id",
    "reports_to_id",
    "team_id",
    "custom",
)
EMAIL_COLUMNS = ("address", "address_key", "domain", "label", "primary", "accepts_email")
PHONE_COLUMNS = ("number", "e164", "national", "type", *history.CONSENT_FLAGS)
ADDRESS_COLUMNS = ("kind", "street", "street2", "postal_code", "city", "region", "country")
#: The columns of the rows of :attr:`NewContact.children`, after the contact's id (see child_rows).
CHILD_ROWS = {
    "emails": (*EMAIL_COLUMNS, "position"),
    "phones": (*PHONE_COLUMNS, "position"),
    "addresses": (*ADDRESS_COLUMNS, "position"),
}


def contact_values(clean: dict[str, Any]) -> dict[str, Any]:
    """The contact row's own columns for a clean state, with the computed display name and sort key.

    Shared by :func:`_apply` (one contact, through the ORM) and :func:`insert_contacts` (many at once).
    """
    values = {field: clean[field] for field in CLEAN_COLUMNS}
    if values["kind"] == "person":
        values["display_name"] = " ".join(p for p in (values["first_name"], values["last_name"]) if p)
        values["sort_key"] = fold(" ".join(p for p in (values["last_name"], values["first_name"]) if p))[:400]
    else:
        values["display_name"] = values["name"] or ""
        values["sort_key"] = fold(values["name"])[:400]
    return values


def child_values(clean: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The email, phone and address rows of a clean state (without contact id and position)."""
    return {
        name: [dict(zip(CHILD_ROWS[name][:-1], row[:-1], strict=True)) for row in rows]
        for name, rows in child_rows(clean).items()
    }


def child_rows(clean: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The email, phone and address rows of a clean state: the values of :data:`CHILD_ROWS`."""
    return {
        "emails": [
            (
                address,
                address.lower(),
                address.rsplit("@", 1)[1].lower(),
                e["label"],
                e["primary"],
                e["accepts_email"],
                position,
            )
            for position, e in enumerate(clean["emails"])
            for address in (e["address"],)
        ],
        "phones": [
            (
                p["number"],
                p["e164"],
                national_digits(p["e164"]),
                p["type"],
                *map(p.__getitem__, history.CONSENT_FLAGS),
                position,
            )
            for position, p in enumerate(clean["phones"])
        ],
        "addresses": [
            (*map(a.__getitem__, ADDRESS_COLUMNS), position) for position, a in enumerate(clean["addresses"])
        ],
    }


def _apply(contact: Contact, clean: dict[str, Any]) -> None:
    for field, value in contact_values(clean).items():
        setattr(contact, field, value)
    children = child_values(clean)
    contact.emails = _sync_children(list(contact.emails), children["emails"], ContactEmail, EMAIL_COLUMNS)
    contact.phones = _sync_children(list(contact.phones), children["phones"], ContactPhone, PHONE_COLUMNS)
    contact.addresses = _sync_children(
        list(contact.addresses), children["addresses"], ContactAddress, ADDRESS_COLUMNS
    )
    contact.tags = resolve_tags(clean["tags"])
    # Usually the acting user, already in the session: no query.
    owners = (db.session.get(User, user_id) for user_id in sorted(clean["owners"]))
    contact.owners = [owner for owner in owners if owner is not None]


def _state_from_input(data: Mapping[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    state = dict(base or {})
    for key, value in data.items():
        if key in READ_ONLY or key == "version":
            continue
        if key == "custom":
            state["custom_changes"] = dict(value or {})
        else:
            state[key] = value
    return state


def _creation_state(data: Mapping[str, Any], user: User | None) -> dict[str, Any]:
    state = _state_from_input(data)
    if "owners" not in data and user is not None:
        state["owners"] = [user_id_of(user)]
    return state


def prepare_contact(
    data: Mapping[str, Any], user: User | None = None, cache: ValidationCache | None = None
) -> dict[str, Any]:
    """Validate ``data`` for a creation exactly as :func:`create_contact` does and return the clean state
    for :func:`insert_contacts`. Raises ValidationError naming each bad field. Writes nothing."""
    return _validate(_creation_state(data, user), None, user, None, cache)


def create_contact(
    data: Mapping[str, Any],
    user: User | None = None,
    source: str = "api",
    fields: dict[str, FieldDef] | None = None,
    import_batch: str | None = None,
    cache: ValidationCache | None = None,
) -> Contact:
    """Create a contact from ``data`` in the API's JSON shape. Raises ValidationError naming each bad field."""
    state = _creation_state(data, user)
    with transaction():
        clean = _validate(state, None, user, fields, cache)
        (contact_id,) = insert_contacts([clean], user, source, import_batch=import_batch)
    # Its lists load when read: a caller that only needs the id (a redirect) reads nothing more.
    contact = db.session.get(Contact, contact_id)
    assert contact is not None
    return contact


#: Contacts one :func:`create_contacts` call (``POST /api/v1/contacts/batch``) may create.
MAX_BATCH = 1000


def create_contacts(
    items: list[Mapping[str, Any]],
    user: User | None = None,
    source: str = "api",
    fields: dict[str, FieldDef] | None = None,
) -> list[int]:
    """Create several contacts at once, all or none; return their ids in the order given.

    Each item is validated as :func:`create_contact` validates one; when any is invalid nothing is
    written and the ValidationError names every problem by its place (``items[3].last_name``).
    """
    if not 1 <= len(items) <= MAX_BATCH:
        raise ValidationError({"items": [f"send between 1 and {MAX_BATCH} contacts"]})
    cache = ValidationCache(fields)
    linked = {
        value
        for data in items
        for value in (data.get("organization_id"), data.get("reports_to_id"))
        if isinstance(value, int) and not isinstance(value, bool)
    }
    if linked:  # the organizations and managers the items link to, read at once
        cache.contacts.update(
            (c.id, c) for c in db.session.scalars(select(Contact).where(Contact.id.in_(linked)))
        )
    cleans, errors = [], {}
    for index, data in enumerate(items):
        try:
            cleans.append(_validate(_creation_state(data, user), None, user, None, cache))
        except ValidationError as exc:
            errors.update({f"items[{index}].{field}": messages for field, messages in exc.errors.items()})
    if errors:
        invalid = len({key.split("]", 1)[0] for key in errors})
        raise ValidationError(errors, f"{invalid} of {len(items)} contacts are invalid; none was created")
    return insert_contacts(cleans, user, source)


_INSERT_CONTACT = insert(Contact.__table__).returning(Contact.__table__.c.id)


#: The columns of a new contact's row (:attr:`NewContact.row`), then what :func:`write_contacts` adds.
CONTACT_ROW = tuple(key for key in (*CLEAN_COLUMNS, "display_name", "sort_key") if key != "organization_id")
_CONTACT_KEYS = (
    *CONTACT_ROW,
    "organization_id",
    "number",
    "created_by_id",
    "import_batch",
    "version",
    "created_at",
    "updated_at",
)
_contact_row = itemgetter(*CONTACT_ROW)
_CHILD_TABLES = {
    "emails": ContactEmail.__table__,
    "phones": ContactPhone.__table__,
    "addresses": ContactAddress.__table__,
}


@dataclass(slots=True)
class NewContact:
    """A validated creation, as rows: everything :func:`write_contacts` stores but the ids, the
    number and the tags' stored names. Computed without the database (:func:`new_contact`), in
    plain tuples and bytes, so that an import computes it in the process reading the file and hands
    it over cheaply (interchange/read_ahead.py)."""

    kind: str
    organization_id: int | None
    #: The values of :data:`CONTACT_ROW`.
    row: tuple[Any, ...]
    #: Email, phone and address rows: the values of :data:`CHILD_ROWS`.
    children: dict[str, list[tuple[Any, ...]]]
    tags: list[str]
    owners: list[int]
    tokens: list[str]
    consents: dict[str, tuple[bool | None, bool]]
    #: The JSON of the creation snapshot (:func:`creation_snapshot`) but its organization and tags.
    snapshot: bytes

    def link_organization(self, organization_id: int) -> None:
        """Make the person a member of ``organization_id`` (an organization known to be live)."""
        self.organization_id = organization_id


def new_contact(clean: dict[str, Any]) -> NewContact:
    """What :func:`write_contacts` writes for ``clean`` (from :func:`prepare_contact`), ids apart."""
    snapshot = creation_snapshot(clean, [])
    del snapshot["organization_id"], snapshot["tags"]
    return NewContact(
        kind=clean["kind"],
        organization_id=clean["organization_id"],
        row=_contact_row(contact_values(clean)),
        children=child_rows(clean),
        tags=clean["tags"],
        owners=clean["owners"],
        tokens=search_index.name_tokens(clean["first_name"], clean["last_name"], clean["name"]),
        consents=history.consent_changes({}, clean),
        snapshot=history.snapshot_json(snapshot),
    )


def insert_contacts(
    cleans: list[dict[str, Any]],
    user: User | None = None,
    source: str = "import",
    import_batch: str | None = None,
    tag_cache: dict[str, tuple[int, str]] | None = None,
    fire_events: bool = True,
) -> list[int]:
    """Create contacts from states returned by :func:`prepare_contact` (or :func:`_validate`); return
    their ids in order. See :func:`write_contacts`."""
    return write_contacts(
        [new_contact(clean) for clean in cleans], user, source, import_batch, tag_cache, fire_events
    )


def write_contacts(
    contacts: list[NewContact],
    user: User | None = None,
    source: str = "import",
    import_batch: str | None = None,
    tag_cache: dict[str, tuple[int, str]] | None = None,
    fire_events: bool = True,
) -> list[int]:
    """Create ``contacts`` (from :func:`new_contact`) and return their ids in order. The one writer of
    new contacts: :func:`create_contact` calls it with one, imports with hundreds.

    Each kind of row (contacts, emails, phones, addresses, tags, owners, history with the creation
    snapshot and consent proofs, name tokens) is written with one statement for the whole list, with
    no ORM unit of work. Plugins hear of them through ``contact_created`` (the stored contacts, loaded
    once, only when a plugin implements it) or, for an ``import_batch``, ``contacts_imported`` (their
    ids); ``fire_events=False`` (dry runs) leaves them out.
    """
    if not contacts:
        return []
    with transaction():
        now = utcnow()
        numbers = next_contact_numbers(len(contacts))
        creator = user_id_of(user)
        common = (creator, import_batch, 1, now, now)
        rows = [
            (*new.row, new.organization_id, number, *common)
            for new, number in zip(contacts, numbers, strict=True)
        ]
        if len(rows) == 1:
            ids = [db.session.scalar(_INSERT_CONTACT, dict(zip(_CONTACT_KEYS, rows[0], strict=True)))]
        else:
            # On SQLite, one INSERT per row then a read of the ids by number is faster than RETURNING,
            # which becomes statements of hundreds of rows' values that SQLite parses one by one.
            insert_tuples(Contact.__table__, _CONTACT_KEYS, rows)
            id_of = dict(
                db.session.execute(
                    select(Contact.number, Contact.id).where(Contact.number.in_(numbers))
                ).all()
            )
            ids = [id_of[number] for number in numbers]
        tag_ids = resolve_tag_ids([name for new in contacts for name in new.tags], tag_cache)
        children: dict[str, list[tuple[Any, ...]]] = {name: [] for name in CHILD_ROWS}
        tag_rows, owner_rows, history_rows, token_rows = [], [], [], []
        for new, contact_id in zip(contacts, ids, strict=True):
            for name, items in new.children.items():
                children[name].extend((contact_id, *item) for item in items)
            tags = dict(tag_ids[tag_key(name)] for name in new.tags)  # id -> stored name
            tag_rows.extend((contact_id, tag_id) for tag_id in tags)
            owner_rows.extend((contact_id, owner) for owner in new.owners)
            snapshot = history.completed_snapshot(
                new.snapshot, {"organization_id": new.organization_id, "tags": sorted(tags.values())}
            )
            history_rows.extend(
                history.creation_rows(contact_id, snapshot, new.consents, creator, source, now)
            )
            token_rows.extend((token, contact_id) for token in new.tokens)
        for name, table in _CHILD_TABLES.items():
            insert_tuples(table, ("contact_id", *CHILD_ROWS[name]), children[name])
        insert_tuples(contact_tags, ("contact_id", "tag_id"), tag_rows)
        insert_tuples(contact_owners, ("contact_id", "user_id"), owner_rows)
        insert_tuples(HistoryEntry.__table__, history.CREATION_KEYS, history_rows)
        insert_tuples(SearchToken.__table__, ("token", "contact_id"), token_rows)
        if not fire_events:
            return ids
        if import_batch is not None:
            plugin_host().hook.contacts_imported(
                contact_ids=ids, batch=import_batch, user=user, source=source
            )
            return ids
        hook = plugin_host().hook.contact_created
        if hook.get_hookimpls():
            # One query for the contacts (and one for their owners: notices read them); other lists
            # load if read.
            found = select(Contact).where(Contact.id.in_(ids)).options(selectinload(Contact.owners))
            loaded = {c.id: c for c in db.session.scalars(found)}
            try:
                for contact_id in ids:
                    hook(contact=loaded[contact_id], user=user, source=source)
            except BaseException:
                # The caller rolls these rows back: forget the objects too (their ids will be reused).
                for contact in loaded.values():
                    db.session.expunge(contact)
                raise
    return ids


def creation_snapshot(clean: dict[str, Any], tag_names: list[str]) -> dict[str, Any]:
    """What :func:`~crmcore.services.serialize.audited_state` gives for the contact ``clean`` creates
    (tags by their stored names), without building the contact: the new value of its "create" entry."""
    snapshot = {field: clean[field] for field in CLEAN_COLUMNS}
    snapshot["birthday"] = clean["birthday"].isoformat() if clean["birthday"] else None
    snapshot["emails"] = clean["emails"]
    snapshot["phones"] = clean["phones"]
    snapshot["addresses"] = clean["addresses"]
    snapshot["tags"] = sorted(tag_names)
    snapshot["owners"] = sorted(clean["owners"])
    return snapshot


def check_version(contact: Contact, expected_version: int | None, header: bool = False) -> None:
    """Refuse a write based on an old read: 412 for a stale ``If-Match``, 409 for a stale body version."""
    if expected_version is None or expected_version == contact.version:
        return
    error = PreconditionFailed if header else Conflict
    raise error(
        f"contact {contact.number} is at version {contact.version}, you sent version {expected_version}; "
        "reload it and apply your change again",
        current=contact_to_dict(contact),
    )


def update_contact(
    contact_id: int,
    data: Mapping[str, Any],
    user: User | None = None,
    source: str = "api",
    expected_version: int | None = None,
    if_match: int | None = None,
    fields: dict[str, FieldDef] | None = None,
    cache: ValidationCache | None = None,
    import_batch: str | None = None,
) -> Contact:
    """Change the fields present in ``data`` (lists such as emails are replaced whole; ``custom`` keys are
    merged, a null value removing one). ``expected_version``/``if_match`` guard against lost updates.
    ``import_batch`` marks the contact as changed by that import (only when something changed)."""
    with transaction():
        contact = get_contact(contact_id, user, "write")
        check_version(contact, if_match, header=True)
        check_version(contact, expected_version if expected_version is not None else data.get("version"))
        before = audited_state(contact)
        state = _state_from_input(data, {k: v for k, v in before.items() if k != "custom"})
        clean = _validate(state, contact, user, fields, cache)
        with db.session.no_autoflush:
            _apply(contact, clean)
            after = audited_state(contact)
        changes = history.diff(before, after)
        if not changes:
            return contact  # nothing changed: no new version, no history
        contact.updated_at = utcnow()
        if import_batch is not None:
            contact.import_batch = import_batch
        if "status" in changes:
            contact.status_forced = True  # a person chose it: automatic changes leave it alone
        db.session.flush()
        history.record(contact, "update", user, source, changes)
        consents = history.consent_changes(before, after)
        if consents:
            history.record(contact, "consent", user, source, consents)
        search_index.reindex([contact])
        plugin_host().hook.contact_updated(contact=contact, changes=changes, user=user, source=source)
    return contact


def delete_contact(contact_id: int, user: User | None = None, source: str = "api") -> Contact:
    """Soft delete: the contact leaves lists and searches and can be restored with its data and links."""
    with transaction():
        contact = get_contact(contact_id, user, "write")
        contact.deleted_at = utcnow()
        contact.updated_at = contact.deleted_at
        db.session.flush()
        history.record(contact, "delete", user, source)
        plugin_host().hook.contact_deleted(contact=contact, user=user, source=source)
    return contact


def restore_contact(contact_id: int, user: User | None = None, source: str = "api") -> Contact:
    with transaction():
        contact = get_contact(contact_id, user, "write", include_deleted=True)
        if contact.deleted_at is None:
            raise Conflict(f"contact {contact.number} is not deleted")
        if contact.merged_into_id is not None:
            raise Conflict(f"contact {contact.number} was merged; undo the merge to get it back")
        contact.deleted_at = None
        contact.updated_at = utcnow()
        db.session.flush()
        history.record(contact, "restore", user, source)
        plugin_host().hook.contact_restored(contact=contact, user=user, source=source)
    return contact


def set_status(
    contact: Contact,
    status: str | None = None,
    is_supplier: bool | None = None,
    user: User | None = None,
    source: str = "system",
    automatic: bool = False,
) -> Contact:
    """Change a contact's status (prospect, customer, user) and/or supplier flag.

    Plugins call it with ``automatic=True`` (e.g. a validated quote turns a prospect into a
    customer): an automatic change leaves a status forced by a user alone. A manual change
    (``automatic=False``) forces the status.
    """
    if status is not None and status not in STATUSES:
        raise ValidationError({"status": [f"must be one of: {', '.join(STATUSES)}"]})
    with transaction():
        contact = get_contact(contact.id, user, "write")
        changes: dict[str, tuple[Any, Any]] = {}
        if status is not None and status != contact.status and not (automatic and contact.status_forced):
            changes["status"] = (contact.status, status)
            contact.status = status
            if not automatic:
                contact.status_forced = True
        if is_supplier is not None and is_supplier != contact.is_supplier:
            changes["is_supplier"] = (contact.is_supplier, is_supplier)
            contact.is_supplier = is_supplier
        if not changes:
            return contact
        contact.updated_at = utcnow()
        db.session.flush()
        history.record(contact, "status", user, source, changes)
        plugin_host().hook.contact_updated(contact=contact, changes=changes, user=user, source=source)
    return contact


# -- warnings --------------------------------------------------------------------------------------


def add_warning(
    contact_id: int, message: str, level: str = "info", user: User | None = None, source: str = "api"
) -> ContactWarning:
    text = _text(message)
    errors: dict[str, list[str]] = {}
    if not text:
        errors["message"] = ["is required"]
    elif len(text) > 500:
        errors["message"] = ["must be at most 500 characters"]
    if level not in ("info", "blocking"):
        errors["level"] = ["must be 'info' or 'blocking'"]
    if errors:
        raise ValidationError(errors)
    with transaction():
        contact = get_contact(contact_id, user, "write")
        warning = ContactWarning(
            contact_id=contact.id, level=level, message=text, created_by_id=user.id if user else None
        )
        db.session.add(warning)
        db.session.flush()
        history.record(
            contact, "warning", user, source, {"warnings": (None, {"level": level, "message": text})}
        )
    return warning


def remove_warning(contact_id: int, warning_id: int, user: User | None = None, source: str = "api") -> None:
    with transaction():
        contact = get_contact(contact_id, user, "write")
        warning = db.session.get(ContactWarning, warning_id)
        if warning is None or warning.contact_id != contact.id:
            raise NotFound(f"warning {warning_id} not found on contact {contact_id}")
        history.record(
            contact,
            "warning",
            user,
            source,
            {"warnings": ({"level": warning.level, "message": warning.message}, None)},
        )
        db.session.delete(warning)


def warnings_of(contact: Contact) -> list[ContactWarning]:
    return list(
        db.session.scalars(
            select(ContactWarning).where(ContactWarning.contact_id == contact.id).order_by(ContactWarning.id)
        )
    )


def copy_main_address(
    contact_id: int, to_kind: str, user: User | None = None, source: str = "api"
) -> Contact:
    """ "Copy from main": add (or overwrite) the ``to_kind`` address with the main address's parts."""
    if to_kind not in ADDRESS_KINDS or to_kind == "main":
        raise ValidationError(
            {"kind": [f"must be one of: {', '.join(k for k in ADDRESS_KINDS if k != 'main')}"]}
        )
    contact = get_contact(contact_id, user, "write")
    addresses = [a for a in contact_to_dict(contact)["addresses"]]
    main = next((a for a in addresses if a["kind"] == "main"), None)
    if main is None:
        raise ValidationError({"addresses": ["the contact has no main address to copy"]})
    addresses = [a for a in addresses if a["kind"] != to_kind] + [{**main, "kind": to_kind}]
    return update_contact(contact.id, {"addresses": addresses}, user, source)
