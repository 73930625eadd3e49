"""Merging contacts without losing anything, and undoing a merge.

``merge_contacts(original_id, merged_ids, fields)`` keeps the original and folds the others into it:

* **values** (copied onto the original, the merged contacts keep theirs): emails, phones and
  addresses (deduplicated: the same address, number or postal address is kept once, its consent
  flags combined), tags, owners, social links and custom values. A field the original leaves
  empty takes the first merged contact's value; ``fields`` chooses explicitly
  (``{"birthday": 12, "custom.vat": 14, "photo": 12}``). ``is_supplier`` and ``do_not_email``
  are kept if any contact had them; a prospect becomes a customer if one of them was.
* **rows** (moved to the original, remembered by id): notes, warnings, history entries, the
  members of a merged organization and the people reporting to a merged person, and, through
  the ``contact_merged`` hook, every plugin's rows. The photo is copied when the original has none
  (or when ``fields["photo"]`` picks another contact's).
* the merged contacts are soft-deleted with ``merged_into_id`` set; everything is recorded in the
  history of each contact and in a :class:`crmcore.models.Merge` row.

``undo_merge(merge_id)`` brings the merged contacts back as they were (their own rows were never
touched), moves the moved rows back, gives the original its previous values and calls the
``contact_merge_undone`` hook.

The undo rule
-------------
Undo is exact or refused (409 ``Conflict`` listing every reason). It is refused when:

* a value the merge set on the original (a field, a custom value, the photo) was changed since;
* a row the merge moved (note, warning, history entry) was deleted or moved elsewhere since, or a
  member relinked by the merge was linked to another organization (or manager) since;
* the original was deleted or merged into another contact since (undo that merge first), or a
  merged contact is no longer merged into the original.

Other changes made to the original since are kept: new notes, new emails, edits of fields the
merge did not set. Emails, phones, addresses, tags and owners the merge added are taken off the
original (those a user removed since are simply already gone); combined consent flags go back to
their previous value unless a user changed them since.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from crmcore.errors import Conflict, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import (
    Contact,
    ContactPhoto,
    ContactWarning,
    HistoryEntry,
    Merge,
    Note,
    User,
    utcnow,
)
from crmcore.services import access, history
from crmcore.services.contacts import get_contact, update_contact
from crmcore.services.fields import all_fields
from crmcore.services.phones import InvalidPhone, to_e164
from crmcore.services.serialize import audited_state, contact_to_dict
from crmcore.services.tags import tag_key
from crmcore.services.text import fold
from crmcore.services.transactions import transaction
from crmcore.state import plugin_host

#: Single-valued fields: the original's value wins, or the first merged contact's if the original's is empty.
SCALAR_FIELDS = (
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
    "is_supplier",
    "organization_id",
    "role",
    "reports_to_id",
    "team_id",
    "visibility",
    "do_not_email",
    "notify_owners",
)
#: Fields ``fields`` may choose besides the scalar ones (and ``custom.<key>``).
OTHER_CHOOSABLE = ("photo", "social")
#: Combined, never chosen: every item of every contact is kept.
LIST_FIELDS = ("emails", "phones", "addresses", "tags", "owners")
#: Flags kept if any contact has them (a refusal to be emailed must survive a merge).
ANY_TRUE = ("is_supplier", "do_not_email")
PHONE_FLAGS = ("sms", "whatsapp", "viber", "calls")


# -- validation ------------------------------------------------------------------------------------


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _load(
    original_id: Any, merged_ids: Any, fields: Any, user: User | None
) -> tuple[Contact, list[Contact], dict[str, int]]:
    errors: dict[str, list[str]] = {}
    if not _is_id(original_id):
        raise ValidationError({"original_id": ["must be a contact id"]})
    if not isinstance(merged_ids, (list, tuple)) or not merged_ids:
        raise ValidationError({"merged_ids": ["name at least one contact to merge into the original"]})
    original = _involved(original_id, user, "original_id")
    merged: list[Contact] = []
    seen = {original.id}
    for index, contact_id in enumerate(merged_ids):
        where = f"merged_ids[{index}]"
        if not _is_id(contact_id):
            errors.setdefault(where, []).append("must be a contact id")
            continue
        if contact_id == original.id:
            errors.setdefault(where, []).append("is the original: a contact cannot be merged into itself")
            continue
        if contact_id in seen:
            errors.setdefault(where, []).append(f"contact {contact_id} is listed twice")
            continue
        seen.add(contact_id)
        try:
            contact = _involved(contact_id, user, where)
        except ValidationError as exc:
            for key, messages in exc.errors.items():
                errors.setdefault(key, []).extend(messages)
            continue
        if contact.kind != original.kind:
            errors.setdefault(where, []).append(
                f"{contact.number} is {_a(contact.kind)} and the original is {_a(original.kind)}: "
                "only contacts of the same kind can be merged"
            )
            continue
        merged.append(contact)
    choices = _choices(fields, [original, *merged], errors)
    if errors:
        raise ValidationError(errors)
    return original, merged, choices


def _a(kind: str) -> str:
    return "an organization" if kind == "organization" else "a person"


def _involved(contact_id: int, user: User | None, where: str) -> Contact:
    """A contact taking part in a merge: it must exist, be visible, writable, not deleted."""
    try:
        contact = get_contact(contact_id, user, "write", include_deleted=True)
    except NotFound:
        raise ValidationError({where: [f"contact {contact_id} does not exist"]}) from None
    if contact.merged_into_id is not None:
        raise ValidationError(
            {where: [f"contact {contact.number} was already merged into contact {contact.merged_into_id}"]}
        )
    if contact.deleted_at is not None:
        raise ValidationError({where: [f"contact {contact.number} is deleted; restore it before merging"]})
    return contact


def _choices(fields: Any, contacts: list[Contact], errors: dict[str, list[str]]) -> dict[str, int]:
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        errors.setdefault("fields", []).append("must be an object {field: contact id whose value wins}")
        return {}
    ids = {c.id for c in contacts}
    known_custom = all_fields()
    choices: dict[str, int] = {}
    for name, contact_id in fields.items():
        where = f"fields.{name}"
        if name in LIST_FIELDS:
            errors.setdefault(where, []).append(
                f"{name} are combined (every item of every contact is kept), not chosen"
            )
            continue
        if name.startswith("custom."):
            if name[len("custom.") :] not in known_custom:
                errors.setdefault(where, []).append("no such custom field")
                continue
        elif name not in SCALAR_FIELDS and name not in OTHER_CHOOSABLE:
            errors.setdefault(where, []).append(
                "cannot be chosen; choose among: "
                + ", ".join((*SCALAR_FIELDS, *OTHER_CHOOSABLE, "custom.<key>"))
            )
            continue
        if not _is_id(contact_id) or contact_id not in ids:
            errors.setdefault(where, []).append(
                f"must be the id of one of the contacts being merged ({', '.join(str(c.id) for c in contacts)})"
            )
            continue
        choices[name] = contact_id
    if "photo" in choices:
        owner = next(c for c in contacts if c.id == choices["photo"])
        if db.session.get(ContactPhoto, owner.id) is None:
            errors.setdefault("fields.photo", []).append(f"contact {owner.id} has no photo")
    return choices


# -- combining -------------------------------------------------------------------------------------


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {})


def _phone_region(country: str | None) -> str | None:
    return country or current_app.config.get("DEFAULT_COUNTRY")


def _phone_item(phone: Mapping[str, Any], region: str | None) -> dict[str, Any]:
    """A phone as update_contact takes it; the E.164 form is sent when the typed one would be read
    differently in the original's country (a Belgian national number on a French contact)."""
    item = {k: v for k, v in phone.items() if k != "e164"}
    try:
        same = to_e164(phone["number"], region) == phone["e164"]
    except InvalidPhone:
        same = False
    if not same:
        item["number"] = phone["e164"]
    return item


def _address_key(address: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        " ".join(fold(address.get(part)).split())
        for part in ("street", "street2", "postal_code", "city", "region", "country")
    )


def _combined(original: Contact, merged: list[Contact], choices: Mapping[str, int]) -> dict[str, Any]:
    """The original's new state (the API shape update_contact takes) and the lists' union."""
    states = {c.id: contact_to_dict(c) for c in [original, *merged]}
    base = states[original.id]
    order = [base, *(states[c.id] for c in merged)]
    merged_ids = {c.id for c in merged}
    data: dict[str, Any] = {}

    def relink(value: Any) -> Any:
        # A link to a contact being merged now points to the original (and never to itself).
        if value in merged_ids:
            value = original.id
        return None if value == original.id else value

    for name in SCALAR_FIELDS:
        if name in choices:
            value = states[choices[name]][name]
        elif name in ANY_TRUE:
            value = any(state[name] for state in order)
        elif name == "status":
            value = base["status"]
            if value == "prospect":
                value = next((s["status"] for s in order if s["status"] != "prospect"), value)
        elif name in ("visibility", "notify_owners"):
            value = base[name]
        else:
            value = next((s[name] for s in order if _filled(s[name])), base[name])
        if name in ("organization_id", "reports_to_id"):
            value = relink(value)
        data[name] = value

    if "social" in choices:
        data["social"] = dict(states[choices["social"]]["social"])
    else:
        social: dict[str, str] = {}
        for state in order:
            for network, url in state["social"].items():
                social.setdefault(network, url)
        data["social"] = social

    emails: dict[str, dict[str, Any]] = {}
    for state in order:
        for email in state["emails"]:
            key = email["address"].lower()
            if key in emails:
                emails[key]["accepts_email"] = emails[key]["accepts_email"] or email["accepts_email"]
            else:
                emails[key] = {**email, "primary": email["primary"] and state is base}
    data["emails"] = list(emails.values())

    region = _phone_region(data["country"])
    phones: dict[str, dict[str, Any]] = {}
    for state in order:
        for phone in state["phones"]:
            if phone["e164"] in phones:
                kept = phones[phone["e164"]]
                for flag in PHONE_FLAGS:
                    kept[flag] = kept[flag] or phone[flag]
            else:
                phones[phone["e164"]] = dict(phone)
    data["phones"] = [_phone_item(p, region) for p in phones.values()]

    addresses: dict[tuple[str, ...], dict[str, Any]] = {}
    for state in order:
        for address in state["addresses"]:
            addresses.setdefault(_address_key(address), dict(address))
    data["addresses"] = list(addresses.values())

    tags: dict[str, str] = {}
    for state in order:
        for name in state["tags"]:
            tags.setdefault(tag_key(name), name)
    data["tags"] = list(tags.values())
    data["owners"] = list(dict.fromkeys(owner for state in order for owner in state["owners"]))

    known = all_fields()
    custom: dict[str, Any] = {}
    keys = dict.fromkeys(key for state in order for key in state["custom"])
    for key in keys:
        field_def = known.get(key)
        if field_def is None or original.kind not in field_def.kinds:
            continue  # values without a definition stay on their contact (restored by an undo)
        chosen = choices.get(f"custom.{key}")
        if chosen is not None:
            value = states[chosen]["custom"].get(key)
        else:
            value = next((s["custom"][key] for s in order if _filled(s["custom"].get(key))), None)
        if value != base["custom"].get(key):
            custom[key] = value
    if custom:
        data["custom"] = custom
    return data


# -- merging ---------------------------------------------------------------------------------------


def _ids(query: Any) -> list[int]:
    return list(db.session.scalars(query))


def _moved_rows(model: Any, merged_ids: list[int]) -> dict[str, int]:
    """``{row id: contact id}`` of ``model`` rows owned by the merged contacts (JSON keys are strings)."""
    rows = db.session.execute(select(model.id, model.contact_id).where(model.contact_id.in_(merged_ids)))
    return {str(row_id): contact_id for row_id, contact_id in rows}


def _photo_state(contact_id: int) -> dict[str, Any] | None:
    photo = db.session.get(ContactPhoto, contact_id)
    if photo is None:
        return None
    return {
        "content_type": photo.content_type,
        "data": base64.b64encode(photo.data).decode("ascii"),
        "updated_at": photo.updated_at.isoformat() if photo.updated_at else None,
        "sha256": hashlib.sha256(photo.data).hexdigest(),
    }


def _summary(contact: Contact) -> dict[str, Any]:
    return {"id": contact.id, "number": contact.number, "display_name": contact.display_name}


def _list_keys(name: str, items: Iterable[Any]) -> list[Any]:
    if name == "emails":
        return [e["address"].lower() for e in items]
    if name == "phones":
        return [p["e164"] for p in items]
    if name == "addresses":
        return [list(_address_key(a)) for a in items]
    if name == "tags":
        return [tag_key(t) for t in items]
    return list(items)


def merge_contacts(
    original_id: int,
    merged_ids: Sequence[int],
    fields: Mapping[str, int] | None = None,
    user: User | None = None,
    source: str = "api",
) -> Merge:
    """Merge ``merged_ids`` into ``original_id`` (see the module docstring). Returns the Merge record.

    ValidationError names each bad id or field; the user must be allowed to change every contact.
    Everything happens in one transaction: a plugin that raises in ``contact_merged`` aborts it all.
    """
    with transaction():
        original, merged, choices = _load(original_id, merged_ids, fields, user)
        ids = [c.id for c in merged]
        # Rows to move, read before this merge writes history of its own.
        moved = {
            "notes": _moved_rows(Note, ids),
            "warnings": _moved_rows(ContactWarning, ids),
            "history": _moved_rows(HistoryEntry, ids),
        }
        involved = [original.id, *ids]
        members = list(
            db.session.scalars(
                select(Contact).where(Contact.organization_id.in_(ids), Contact.id.not_in(involved))
            )
        )
        reports = list(
            db.session.scalars(
                select(Contact).where(Contact.reports_to_id.in_(ids), Contact.id.not_in(involved))
            )
        )
        moved["members"] = {str(c.id): c.organization_id for c in members}
        moved["reports"] = {str(c.id): c.reports_to_id for c in reports}
        merged_states = {str(c.id): contact_to_dict(c) for c in merged}
        before = audited_state(original)
        photo_before = _photo_state(original.id)
        data = _combined(original, merged, choices)

        now = utcnow()
        for contact in merged:
            contact.deleted_at = now
            contact.merged_into_id = original.id
            contact.updated_at = now
        _relink(members, "organization_id", original.id, now)
        _relink(reports, "reports_to_id", original.id, now)
        db.session.flush()

        update_contact(original.id, data, user, "merge")
        after = audited_state(original)

        for model, key in ((Note, "notes"), (ContactWarning, "warnings"), (HistoryEntry, "history")):
            if moved[key]:
                db.session.execute(
                    update(model)
                    .where(model.id.in_([int(i) for i in moved[key]]))
                    .values(contact_id=original.id)
                    .execution_options(synchronize_session=False)
                )

        photo = _merge_photo(original, merged, choices, photo_before, user)

        changes = history.diff(before, after)
        added = {}
        for name in LIST_FIELDS:
            old_keys = _list_keys(name, before[name])
            added[name] = [k for k in _list_keys(name, after[name]) if k not in old_keys]
        snapshot = {
            "before": before,
            "after": after,
            "changes": {k: [old, new] for k, (old, new) in changes.items() if k not in LIST_FIELDS},
            "added": added,
            "flags": _flag_changes(before, after),
            "moved": moved,
            "photo": photo,
            "merged": merged_states,
        }
        record = Merge(
            original_id=original.id,
            merged_ids=ids,
            fields=dict(choices),
            snapshot=snapshot,
            user_id=user.id if user else None,
            source=source,
            created_at=now,
        )
        db.session.add(record)
        db.session.flush()

        history.record(
            original,
            "merge",
            user,
            source,
            {"merged": (None, {"merge_id": record.id, "contacts": [_summary(c) for c in merged]})},
        )
        for contact in merged:
            history.record(
                contact,
                "merge",
                user,
                source,
                {"merged_into": (None, {"merge_id": record.id, "contact": _summary(original)})},
            )
        for contact in members:
            history.record(
                contact,
                "update",
                user,
                "merge",
                {"organization_id": (int(moved["members"][str(contact.id)]), original.id)},
            )
        for contact in reports:
            history.record(
                contact,
                "update",
                user,
                "merge",
                {"reports_to_id": (int(moved["reports"][str(contact.id)]), original.id)},
            )
        db.session.flush()
        db.session.expire_all()
        plugin_host().hook.contact_merged(survivor=original, merged=merged, merge_id=record.id, user=user)
    return record


def _relink(contacts: list[Contact], attribute: str, target: int | None, now: Any) -> None:
    for contact in contacts:
        setattr(contact, attribute, target)
        contact.updated_at = now


def _flag_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Consent flags of the original's own emails and phones that the merge turned on: ``{key: {flag: [old, new]}}``."""
    flags: dict[str, Any] = {"emails": {}, "phones": {}}
    old_emails = {e["address"].lower(): e for e in before["emails"]}
    for email in after["emails"]:
        old = old_emails.get(email["address"].lower())
        if old is not None and old["accepts_email"] != email["accepts_email"]:
            flags["emails"][email["address"].lower()] = {
                "accepts_email": [old["accepts_email"], email["accepts_email"]]
            }
    old_phones = {p["e164"]: p for p in before["phones"]}
    for phone in after["phones"]:
        old = old_phones.get(phone["e164"])
        if old is None:
            continue
        changed = {f: [old[f], phone[f]] for f in PHONE_FLAGS if old[f] != phone[f]}
        if changed:
            flags["phones"][phone["e164"]] = changed
    return flags


def _merge_photo(
    original: Contact,
    merged: list[Contact],
    choices: Mapping[str, int],
    before: dict[str, Any] | None,
    user: User | None,
) -> dict[str, Any] | None:
    """Copy the winning photo onto the original; return what undo needs (None when unchanged)."""
    source_id = choices.get("photo")
    if source_id is None and before is None:
        source_id = next((c.id for c in merged if db.session.get(ContactPhoto, c.id) is not None), None)
    if source_id is None or source_id == original.id:
        return None
    source = db.session.get(ContactPhoto, source_id)
    assert source is not None  # checked by _choices or found above
    photo = db.session.get(ContactPhoto, original.id)
    if photo is None:
        photo = ContactPhoto(contact_id=original.id)
        db.session.add(photo)
    photo.data, photo.content_type, photo.updated_at = source.data, source.content_type, utcnow()
    db.session.flush()
    old = None if before is None else "image"
    history.record(original, "update", user, "merge", {"photo": (old, f"photo of contact {source_id}")})
    return {"before": before, "from": source_id, "sha256": hashlib.sha256(source.data).hexdigest()}


# -- undoing ---------------------------------------------------------------------------------------


def get_merge(merge_id: int, user: User | None = None) -> Merge:
    """The merge ``merge_id`` if ``user`` may read its original; NotFound otherwise."""
    merge = db.session.get(Merge, merge_id) if _is_id(merge_id) else None
    if merge is None:
        raise NotFound(f"merge {merge_id} not found")
    get_contact(merge.original_id, user, "read", include_deleted=True)
    return merge


def merges_of(contact_id: int, user: User | None = None) -> list[Merge]:
    """Merges into ``contact_id`` and the merge that absorbed it (if any), newest first."""
    contact = get_contact(contact_id, user, "read", include_deleted=True)
    query = select(Merge).where(Merge.original_id == contact.id)
    merges = list(db.session.scalars(query.order_by(Merge.id.desc())))
    if contact.merged_into_id is not None:
        absorbing = db.session.scalars(
            select(Merge)
            .where(Merge.original_id == contact.merged_into_id, Merge.undone_at.is_(None))
            .order_by(Merge.id.desc())
        )
        merges.extend(m for m in absorbing if contact.id in (m.merged_ids or []))
    return merges


def undo_conflicts(merge: Merge) -> list[str]:
    """Why ``merge`` can no longer be undone exactly (empty: it can)."""
    problems: list[str] = []
    if merge.undone_at is not None:
        return [f"merge {merge.id} was already undone on {merge.undone_at.isoformat(timespec='seconds')}"]
    original = db.session.get(Contact, merge.original_id)
    if original is None:
        return [f"the original contact {merge.original_id} no longer exists"]
    if original.merged_into_id is not None:
        later = _absorbing_merge(original)
        problems.append(
            f"the original {original.number} was merged into contact {original.merged_into_id} since"
            + (f": undo merge {later} first" if later else "")
        )
    elif original.deleted_at is not None:
        problems.append(f"the original {original.number} was deleted since: restore it first")
    for contact_id in merge.merged_ids:
        contact = db.session.get(Contact, contact_id)
        if contact is None:
            problems.append(f"merged contact {contact_id} no longer exists")
        elif contact.merged_into_id != original.id or contact.deleted_at is None:
            problems.append(f"contact {contact.number} is no longer merged into {original.number}")
    if problems:
        return problems

    snapshot = merge.snapshot
    current = audited_state(original)
    for name, (_old, new) in snapshot["changes"].items():
        if name == "custom":
            continue
        if current.get(name) != new:
            problems.append(
                f"{name} was changed after the merge (the merge set {new!r}, it is now {current.get(name)!r})"
            )
    old_custom = snapshot["before"].get("custom") or {}
    new_custom = snapshot["after"].get("custom") or {}
    for key in set(old_custom) | set(new_custom):
        if old_custom.get(key) != new_custom.get(key) and current["custom"].get(key) != new_custom.get(key):
            problems.append(
                f"custom.{key} was changed after the merge (the merge set {new_custom.get(key)!r}, "
                f"it is now {current['custom'].get(key)!r})"
            )
    moved = snapshot["moved"]
    for model, key, label in (
        (Note, "notes", "note"),
        (ContactWarning, "warnings", "warning"),
        (HistoryEntry, "history", "history entry"),
    ):
        wanted = [int(i) for i in moved[key]]
        if not wanted:
            continue
        still = set(_ids(select(model.id).where(model.id.in_(wanted), model.contact_id == original.id)))
        for row_id in wanted:
            if row_id not in still:
                problems.append(f"{label} {row_id} moved by the merge was deleted or moved since")
    for key, attribute, what in (
        ("members", "organization_id", "organization"),
        ("reports", "reports_to_id", "manager"),
    ):
        for contact_id in moved[key]:
            contact = db.session.get(Contact, int(contact_id))
            if contact is not None and getattr(contact, attribute) != original.id:
                problems.append(f"contact {contact.number} was given another {what} since the merge")
    photo = snapshot.get("photo")
    if photo:
        now = _photo_state(original.id)
        if now is None or now["sha256"] != photo["sha256"]:
            problems.append("the photo was changed after the merge")
    return problems


def _absorbing_merge(contact: Contact) -> int | None:
    merges = db.session.scalars(
        select(Merge).where(Merge.original_id == contact.merged_into_id, Merge.undone_at.is_(None))
    )
    return next((m.id for m in merges if contact.id in (m.merged_ids or [])), None)


def _restored_data(original: Contact, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The original's state with what the merge set or added taken back (update_contact's input)."""
    current = contact_to_dict(original)
    data: dict[str, Any] = {}
    for name, (old, _new) in snapshot["changes"].items():
        if name != "custom":
            data[name] = old
    old_custom = snapshot["before"].get("custom") or {}
    new_custom = snapshot["after"].get("custom") or {}
    custom = {
        key: old_custom.get(key)
        for key in set(old_custom) | set(new_custom)
        if old_custom.get(key) != new_custom.get(key)
    }
    if custom:
        data["custom"] = custom

    added = snapshot["added"]
    flags = snapshot["flags"]
    emails = []
    for email in current["emails"]:
        key = email["address"].lower()
        if key in added["emails"]:
            continue
        changed = flags["emails"].get(key, {})
        for flag, (old, new) in changed.items():
            if email[flag] == new:
                email[flag] = old
        emails.append(email)
    data["emails"] = emails
    country = data.get("country", current["country"])
    phones = []
    for phone in current["phones"]:
        if phone["e164"] in added["phones"]:
            continue
        for flag, (old, new) in flags["phones"].get(phone["e164"], {}).items():
            if phone[flag] == new:
                phone[flag] = old
        phones.append(_phone_item(phone, _phone_region(country)))
    data["phones"] = phones
    added_addresses = [tuple(a) for a in added["addresses"]]
    data["addresses"] = [a for a in current["addresses"] if _address_key(a) not in added_addresses]
    data["tags"] = [t for t in current["tags"] if tag_key(t) not in added["tags"]]
    data["owners"] = [o for o in current["owners"] if o not in added["owners"]]
    return data


def undo_merge(merge_id: int, user: User | None = None, source: str = "api") -> Merge:
    """Undo merge ``merge_id`` exactly, or raise Conflict (409) listing why it no longer can."""
    with transaction():
        merge = get_merge(merge_id, user)
        # Access first: someone who may not change these contacts learns nothing more.
        original = get_contact(merge.original_id, user, "write", include_deleted=True)
        restored = [c for c in (db.session.get(Contact, i) for i in merge.merged_ids) if c is not None]
        for contact in restored:
            access.check(contact, user, "write")
        problems = undo_conflicts(merge)
        if problems:
            raise Conflict(
                f"merge {merge.id} cannot be undone exactly: " + "; ".join(problems), conflicts=problems
            )
        snapshot = merge.snapshot
        moved = snapshot["moved"]
        now = utcnow()
        for contact in restored:
            contact.deleted_at = None
            contact.merged_into_id = None
            contact.updated_at = now
        members = []
        for key, attribute in (("members", "organization_id"), ("reports", "reports_to_id")):
            for contact_id, previous in moved[key].items():
                contact = db.session.get(Contact, int(contact_id))
                if contact is None:
                    continue
                setattr(contact, attribute, previous)
                contact.updated_at = now
                members.append((contact, attribute, previous))
        for model, key in ((Note, "notes"), (ContactWarning, "warnings"), (HistoryEntry, "history")):
            by_owner: dict[int, list[int]] = {}
            for row_id, owner in moved[key].items():
                by_owner.setdefault(owner, []).append(int(row_id))
            for owner, row_ids in by_owner.items():
                db.session.execute(
                    update(model)
                    .where(model.id.in_(row_ids))
                    .values(contact_id=owner)
                    .execution_options(synchronize_session=False)
                )
        db.session.flush()

        update_contact(original.id, _restored_data(original, snapshot), user, "merge")
        _undo_photo(original, snapshot.get("photo"), user)

        merge.undone_at = now
        merge.undone_by_id = user.id if user else None
        history.record(
            original,
            "unmerge",
            user,
            source,
            {"merged": ({"merge_id": merge.id, "contacts": [_summary(c) for c in restored]}, None)},
        )
        for contact in restored:
            history.record(
                contact,
                "unmerge",
                user,
                source,
                {"merged_into": ({"merge_id": merge.id, "contact": _summary(original)}, None)},
            )
        for contact, attribute, previous in members:
            history.record(contact, "update", user, "merge", {attribute: (original.id, previous)})
        # Rows were moved by bulk UPDATEs: let the plugins see them where they now are.
        db.session.flush()
        db.session.expire_all()
        plugin_host().hook.contact_merge_undone(
            survivor=original, restored=restored, merge_id=merge.id, user=user
        )
    return merge


def _undo_photo(original: Contact, photo: Mapping[str, Any] | None, user: User | None) -> None:
    if not photo:
        return
    row = db.session.get(ContactPhoto, original.id)
    before = photo.get("before")
    if before is None:
        if row is not None:
            db.session.delete(row)
        history.record(original, "update", user, "merge", {"photo": ("image", None)})
        return
    if row is None:
        row = ContactPhoto(contact_id=original.id)
        db.session.add(row)
    row.data = base64.b64decode(before["data"])
    row.content_type = before["content_type"]
    row.updated_at = utcnow()
    history.record(original, "update", user, "merge", {"photo": ("image", "previous photo")})


def merge_to_dict(merge: Merge, with_conflicts: bool = False) -> dict[str, Any]:
    snapshot = merge.snapshot or {}
    out: dict[str, Any] = {
        "id": merge.id,
        "original_id": merge.original_id,
        "merged_ids": list(merge.merged_ids),
        "fields": dict(merge.fields or {}),
        "changes": {k: {"old": v[0], "new": v[1]} for k, v in (snapshot.get("changes") or {}).items()},
        "added": snapshot.get("added") or {},
        "moved": {k: len(v) for k, v in (snapshot.get("moved") or {}).items()},
        "user_id": merge.user_id,
        "source": merge.source,
        "created_at": merge.created_at.isoformat(),
        "undone_at": merge.undone_at.isoformat() if merge.undone_at else None,
        "undone_by_id": merge.undone_by_id,
    }
    if with_conflicts:
        conflicts = undo_conflicts(merge) if merge.undone_at is None else []
        out["can_undo"] = merge.undone_at is None and not conflicts
        out["undo_conflicts"] = conflicts
    return out
