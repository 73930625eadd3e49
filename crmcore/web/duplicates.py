"""Pages "Check duplicates" (``/contacts/duplicates``) and "Merge duplicates" (``/contacts/merge``).

Thin views over :mod:`crmcore.services.duplicates` and :mod:`crmcore.services.merge`: the scan lists
the pairs the signed-in user may read; the merge screen shows the contacts side by side, lets the
user pick the original and, field by field, whose value wins; ``merge_contacts`` and ``undo_merge``
(with ``request_user()`` and ``source="ui"``) do the work, check access and audit.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_percent, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select

from crmcore.auth import request_user
from crmcore.errors import Conflict, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.models import Contact, ContactPhoto, User
from crmcore.services import access
from crmcore.services import duplicates as dup
from crmcore.services import merge as merge_svc
from crmcore.services.contacts import get_contact
from crmcore.services.fields import all_fields
from crmcore.services.serialize import contact_to_dict
from crmcore.web.labels import DUPLICATE_REASONS, field_label, format_value
from crmcore.web.messages import translate

bp = Blueprint("duplicate_pages", __name__)


def _l(message: str) -> str:
    """Marks a message for extraction (pybabel keyword ``_l``); translated when shown."""
    return message


SOURCE = "ui"
#: Pairs per page of the duplicate list.
PAGE_SIZE = 50
#: Contacts shown side by side on the merge screen at most.
MAX_MERGE = 10
#: Minimum scores offered on the duplicate page (the configured one is added).
THRESHOLDS = (0.95, 0.9, 0.8, 0.7, 0.6, 0.5)

# -- reasons and service messages in the page's language --------------------------------------------

#: The scan's reasons (English, as the API gives them) and their translation; groups fill placeholders,
#: a ``score`` group is shown as a percentage.
_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), t)
    for p, t in [
        (r"^same email (?P<value>.+)$", _l("same email %(value)s")),
        (r"^same phone (?P<value>.+)$", _l("same phone %(value)s")),
        (r"^same name$", _l("same name")),
        (r"^name similarity (?P<score>[\d.]+)$", _l("similar name (%(score)s)")),
        (r"^first and last names swapped$", _l("first and last names swapped")),
        (r"^last name initial (?P<value>.+)$", _l("last name initial %(value)s")),
        (r"^first name initial (?P<value>.+)$", _l("first name initial %(value)s")),
        (r"^same birthday (?P<value>.+)$", _l("same birthday %(value)s")),
        (r"^close birthdays (?P<a>\S+) / (?P<b>\S+)$", _l("close birthdays %(a)s / %(b)s")),
        (r"^different birthdays (?P<a>\S+) / (?P<b>\S+)$", _l("different birthdays %(a)s / %(b)s")),
        (r"^same postcode (?P<value>.+)$", _l("same postal code %(value)s")),
        (
            r"^address similarity (?P<score>[\d.]+), same number (?P<value>.+)$",
            _l("similar address (%(score)s), same street number %(value)s"),
        ),
        (r"^address similarity (?P<score>[\d.]+)$", _l("similar address (%(score)s)")),
        (r"^same city (?P<value>.+)$", _l("same city %(value)s")),
        (r"^same organization$", _l("same organization")),
        (
            r"^different first names: relatives or colleagues\?$",
            _l("different first names: relatives or colleagues?"),
        ),
    ]
]

#: Messages of the merge service (ValidationError, undo conflicts), translated on these pages.
_MERGE_MESSAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), t)
    for p, t in [
        (
            r"^contact (?P<number>\S+) was already merged into contact (?P<into>\d+)$",
            _l("contact %(number)s was already merged into another contact"),
        ),
        (
            r"^contact (?P<number>\S+) is deleted; restore it before merging$",
            _l("contact %(number)s is deleted; restore it before merging"),
        ),
        (
            r"^is the original: a contact cannot be merged into itself$",
            _l("is the original: a contact cannot be merged into itself"),
        ),
        (r"^contact (?P<id>\d+) is listed twice$", _l("a contact is listed twice")),
        (
            r"^(?P<number>\S+) is an? \w+ and the original is an? \w+: only contacts of the same kind "
            r"can be merged$",
            _l(
                "%(number)s is not of the same kind as the original: only contacts of the same kind can be merged"
            ),
        ),
        (
            r"^name at least one contact to merge into the original$",
            _l("choose at least one contact to merge into the original"),
        ),
        (
            r"^must be the id of one of the contacts being merged.*$",
            _l("choose one of the contacts being merged"),
        ),
        (r"^contact (?P<id>\d+) has no photo$", _l("this contact has no photo")),
        (
            r"^merge (?P<id>\d+) was already undone on (?P<at>\S+)$",
            _l("this merge was already undone (%(at)s)"),
        ),
        (
            r"^the original contact (?P<id>\d+) no longer exists$",
            _l("the original contact no longer exists"),
        ),
        (
            r"^the original (?P<number>\S+) was merged into contact (?P<into>\d+) since: undo merge (?P<later>\d+) first$",
            _l(
                "the original %(number)s was merged into another contact since: undo that merge (%(later)s) first"
            ),
        ),
        (
            r"^the original (?P<number>\S+) was merged into contact (?P<into>\d+) since$",
            _l("the original %(number)s was merged into another contact since"),
        ),
        (
            r"^the original (?P<number>\S+) was deleted since: restore it first$",
            _l("the original %(number)s was deleted since: restore it first"),
        ),
        (r"^merged contact (?P<id>\d+) no longer exists$", _l("merged contact %(id)s no longer exists")),
        (
            r"^contact (?P<number>\S+) is no longer merged into (?P<original>\S+)$",
            _l("contact %(number)s is no longer merged into %(original)s"),
        ),
        (
            r"^custom\.(?P<field>\w+) was changed after the merge \(the merge set (?P<new>.*), it is now (?P<now>.*)\)$",
            _l("%(field)s was changed after the merge (the merge set %(new)s, it is now %(now)s)"),
        ),
        (
            r"^(?P<field>\w+) was changed after the merge \(the merge set (?P<new>.*), it is now (?P<now>.*)\)$",
            _l("%(field)s was changed after the merge (the merge set %(new)s, it is now %(now)s)"),
        ),
        (
            r"^note (?P<id>\d+) moved by the merge was deleted or moved since$",
            _l("a note moved by the merge was deleted or moved since"),
        ),
        (
            r"^warning (?P<id>\d+) moved by the merge was deleted or moved since$",
            _l("a warning moved by the merge was deleted or moved since"),
        ),
        (
            r"^history entry (?P<id>\d+) moved by the merge was deleted or moved since$",
            _l("a history entry moved by the merge was deleted or moved since"),
        ),
    ]
]


def reason_text(reason: str) -> str:
    """One reason of the scan in the page's language; an unknown one is shown as it is."""
    for pattern, translation in _REASONS:
        match = pattern.match(reason)
        if match:
            values = match.groupdict()
            if "score" in values:
                values["score"] = format_percent(float(values["score"]))
            return _(translation, **values)
    for key in sorted(DUPLICATE_REASONS, key=len, reverse=True):  # reasons added later: their start
        if reason.startswith(key):
            return str(DUPLICATE_REASONS[key]) + reason[len(key) :]
    return reason


def merge_message(message: str) -> str:
    """A merge service message in the page's language (field names as labels); else :func:`translate`."""
    for pattern, translation in _MERGE_MESSAGES:
        match = pattern.match(message)
        if match:
            values = dict(match.groupdict())
            if "field" in values:
                key = values["field"]
                values["field"] = field_label(f"custom.{key}" if message.startswith("custom.") else key)
            return _(translation, **values)
    return translate(message)


# -- the duplicate list -------------------------------------------------------------------------------


def _organization_names(contacts: Iterable[Contact]) -> dict[int, str]:
    ids = {c.organization_id for c in contacts if c.organization_id}
    if not ids:
        return {}
    rows = db.session.execute(select(Contact.id, Contact.display_name).where(Contact.id.in_(ids)))
    return {row.id: row.display_name for row in rows}


def _threshold_arg() -> float | None:
    raw = request.args.get("threshold", "").strip()
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0.3 <= value <= 1.0 else None


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


#: Scans kept per application so that the next pages do not scan the base again (least recently used out).
SCAN_CACHE_SIZE = 8
#: A kept scan is used for this long at most, whatever happens.
SCAN_CACHE_SECONDS = 600
_SCAN_LOCK = threading.Lock()


def _scan(user: User | None, threshold: float) -> list[dup.DuplicatePair]:
    """``find_duplicates(user, threshold)``, kept while the contacts table is unchanged.

    Every service that writes a contact (an email, an owner, a deletion, a merge...) moves its
    ``updated_at``; a creation or a purge changes the count or the highest id. One indexed query tells
    whether a kept scan still holds, so paging through the pairs does not scan the base again. The
    pairs marked "not a duplicate" are in it: :func:`index` leaves them out at each display.
    """
    state = tuple(
        db.session.execute(select(func.count(), func.max(Contact.id), func.max(Contact.updated_at))).one()
    )
    key = (user.id if user else None, bool(user and user.is_admin), threshold, state)
    cache: OrderedDict[Any, tuple[float, list[dup.DuplicatePair]]] = current_app.extensions.setdefault(
        "crm_duplicate_scans", OrderedDict()
    )
    now = time.monotonic()
    with _SCAN_LOCK:
        kept = cache.get(key)
        if kept is not None and now - kept[0] < SCAN_CACHE_SECONDS:
            cache.move_to_end(key)
            return kept[1]
    # Kept with the pairs marked "not a duplicate": marking or unmarking one never needs a new scan.
    pairs = dup.find_duplicates(user, threshold, exclude_dismissed=False)
    with _SCAN_LOCK:
        cache[key] = (now, pairs)
        cache.move_to_end(key)
        while len(cache) > SCAN_CACHE_SIZE:
            cache.popitem(last=False)
    return pairs


@bp.route("/contacts/duplicates")
def index() -> Any:
    user = request_user()
    settings = dup.settings_from_config()
    threshold = _threshold_arg() or settings.threshold
    pairs = dup.without_dismissed(_scan(user, threshold))
    total = len(pairs)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(_page_arg(), pages)
    start = (page - 1) * PAGE_SIZE
    shown = pairs[start : start + PAGE_SIZE]
    contacts = dup.contacts_of(shown)
    organizations = _organization_names(contacts.values())
    writable = {cid: access.can(c, user, "write") for cid, c in contacts.items()}
    rows = []
    for pair in shown:
        a, b = contacts.get(pair.a), contacts.get(pair.b)
        if a is None or b is None:
            continue
        rows.append(
            {
                "pair": pair,
                "contacts": (a, b),
                "score": format_percent(pair.score),
                "reasons": [reason_text(r) for r in pair.reasons],
                "can_merge": writable[a.id] and writable[b.id] and a.kind == b.kind,
                "merge_url": url_for(".merge", ids=[a.id, b.id]),
            }
        )
    choices = sorted({*THRESHOLDS, settings.threshold, threshold}, reverse=True)

    def page_url(number: int) -> str:
        params: dict[str, Any] = {"page": number}
        if _threshold_arg() is not None:
            params["threshold"] = threshold
        return url_for(".index") + "?" + urlencode(params)

    return render_template(
        "duplicates/list.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        first=start + 1,
        last=start + len(shown),
        threshold=threshold,
        threshold_arg=_threshold_arg(),
        default_threshold=settings.threshold,
        thresholds=[(t, format_percent(t)) for t in choices],
        organizations=organizations,
        page_url=page_url,
        dismissed=_dismissed_rows(user),
        dismissed_total=dup.count_dismissed(user),
    )


# -- "not a duplicate" ---------------------------------------------------------------------------------

#: Pairs marked "not a duplicate" listed under the duplicates (the newest), each with its undo button.
DISMISSED_SHOWN = 20


def _dismissed_rows(user: User | None) -> list[dict[str, Any]]:
    markers = dup.list_dismissed(user, DISMISSED_SHOWN)
    if not markers:
        return []
    ids = {i for m in markers for i in (m.contact_a_id, m.contact_b_id)}
    contacts = {c.id: c for c in db.session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    user_ids = {m.user_id for m in markers if m.user_id}
    users = (
        {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    )
    rows = []
    for marker in markers:
        a, b = contacts.get(marker.contact_a_id), contacts.get(marker.contact_b_id)
        if a is None or b is None:
            continue
        who = users.get(marker.user_id) if marker.user_id else None
        rows.append({"marker": marker, "contacts": (a, b), "who": who.display_name if who else None})
    return rows


def _pair_form() -> tuple[int, int] | None:
    """The two contact ids posted (``a``, ``b``); None, and an error shown, when they are not two ids."""
    ids = []
    for name in ("a", "b"):
        raw = request.form.get(name, "").strip()
        if not (raw.isdigit() and 0 < len(raw) < 11 and 0 < int(raw) < 2**31):
            flash(_("Choose two contacts."), "error")
            return None
        ids.append(int(raw))
    if ids[0] == ids[1]:
        flash(_("Choose two different contacts."), "error")
        return None
    return ids[0], ids[1]


def _back() -> Any:
    """The duplicate page the form was posted from (same minimum likeness and page)."""
    params: dict[str, Any] = {}
    threshold = request.form.get("threshold", "").strip()
    try:
        if 0.3 <= float(threshold) <= 1.0:
            params["threshold"] = threshold
    except ValueError:
        pass
    page = request.form.get("page", "")
    if page.isdigit() and 0 < len(page) < 7 and int(page) > 1:
        params["page"] = page
    return redirect(url_for(".index") + ("?" + urlencode(params) if params else ""))


@bp.route("/contacts/duplicates/dismiss", methods=["POST"])
def dismiss() -> Any:
    """Mark the posted pair "not a duplicate": never proposed again (a 404 page for a hidden contact)."""
    pair = _pair_form()
    if pair is None:
        return _back()
    try:
        marker, _created = dup.dismiss_pair(pair[0], pair[1], request_user())
    except ValidationError as exc:
        flash("; ".join(translate(m) for messages in exc.errors.values() for m in messages), "error")
        return _back()
    a = get_contact(marker.contact_a_id, request_user())
    b = get_contact(marker.contact_b_id, request_user())
    flash(
        _(
            "%(a)s and %(b)s are marked as not duplicates: this pair will not be proposed again.",
            a=f"{a.display_name} ({a.number})",
            b=f"{b.display_name} ({b.number})",
        ),
        "success",
    )
    return _back()


@bp.route("/contacts/duplicates/undismiss", methods=["POST"])
def undismiss() -> Any:
    """Undo "not a duplicate": the pair may be proposed again."""
    pair = _pair_form()
    if pair is None:
        return _back()
    try:
        dup.undismiss(pair[0], pair[1], request_user())
    except ValidationError as exc:
        flash("; ".join(translate(m) for messages in exc.errors.values() for m in messages), "error")
        return _back()
    except NotFound as exc:
        if exc.details.get("field"):  # a contact the user may not read: the usual 404 page
            raise
        flash(_("This pair was not marked as not duplicates (any more)."), "error")
        return _back()
    flash(_("The pair may be proposed as duplicates again."), "success")
    return _back()


# -- the merge screen --------------------------------------------------------------------------------

#: Single-valued fields the screen offers to choose, in the order shown (those the service chooses).
CHOSEN_FIELDS = (
    "salutation",
    "first_name",
    "last_name",
    "name",
    "job_title",
    "department",
    "birthday",
    "organization_id",
    "role",
    "reports_to_id",
    "status",
    "origin",
    "language",
    "country",
    "external_id",
    "website",
    "description",
    "team_id",
    "visibility",
    "notify_owners",
)
#: Kept when any contact has them (a refusal to be emailed survives a merge): shown, never chosen.
ANY_TRUE_FIELDS = ("is_supplier", "do_not_email")
#: Combined: every item of every contact is kept.
COMBINED_FIELDS = ("emails", "phones", "addresses", "tags", "owners", "social")

assert set(CHOSEN_FIELDS) | set(ANY_TRUE_FIELDS) == set(merge_svc.SCALAR_FIELDS)
assert set(COMBINED_FIELDS) == set(merge_svc.LIST_FIELDS) | {"social"}


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {})


def _default_for(name: str, states: Mapping[int, Mapping[str, Any]], order: Sequence[int]) -> int:
    """Whose value the service keeps when nothing is chosen (see ``merge._combined``)."""
    original = order[0]
    if name == "status":
        if states[original]["status"] != "prospect":
            return original
        return next((cid for cid in order if states[cid]["status"] != "prospect"), original)
    if name in ("visibility", "notify_owners"):
        return original
    return next((cid for cid in order if _filled(_value(states[cid], name))), original)


def _value(state: Mapping[str, Any], name: str) -> Any:
    if name.startswith("custom."):
        return state["custom"].get(name[len("custom.") :])
    return state[name]


@dataclass
class Row:
    """One line of the comparison: a field, each contact's value, and whose value wins."""

    key: str
    label: str
    values: list[tuple[int, str, bool]]  # (contact id, shown value, filled)
    same: bool
    chosen: int | None = None
    #: The default winner for every possible original (the script follows a change of original).
    defaults: dict[int, int] = field(default_factory=dict)
    choosable: set[int] = field(default_factory=set)
    note: str = ""

    @property
    def html_id(self) -> str:
        return self.key.replace(".", "-").replace("_", "-")


@dataclass
class MergeScreen:
    contacts: list[Contact]
    original_id: int | None
    rows: list[Row]
    combined: list[Row]
    automatic: list[Row]
    refused: list[str]
    photos: set[int]


def _ids_arg(values: Iterable[str]) -> list[int]:
    """Contact ids from ``ids`` (repeated, or comma-separated), in order, each once."""
    ids: list[int] = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if part.isdigit() and len(part) < 11 and int(part) > 0 and int(part) not in ids:
                ids.append(int(part))
    return ids


def _load(ids: Sequence[int], user: User | None) -> tuple[list[Contact], list[str]]:
    """The contacts to merge, and why any of them cannot take part (never naming one the user may not see)."""
    contacts: list[Contact] = []
    refused: list[str] = []
    for contact_id in ids:
        try:
            contact = get_contact(contact_id, user, "read", include_deleted=True)
        except NotFound:
            refused.append(_("Contact #%(id)s does not exist or is not visible to you.", id=contact_id))
            continue
        if not access.can(contact, user, "write"):
            refused.append(
                _(
                    "You may read %(name)s (%(number)s) but not change it: only contacts you may change can be "
                    "merged.",
                    name=contact.display_name,
                    number=contact.number,
                )
            )
        elif contact.merged_into_id is not None:
            refused.append(
                _(
                    "%(name)s (%(number)s) was already merged.",
                    name=contact.display_name,
                    number=contact.number,
                )
            )
        elif contact.deleted_at is not None:
            refused.append(
                _(
                    "%(name)s (%(number)s) is deleted: restore it before merging.",
                    name=contact.display_name,
                    number=contact.number,
                )
            )
        contacts.append(contact)
    kinds = {c.kind for c in contacts}
    if len(kinds) > 1:
        refused.append(_("People and organizations cannot be merged together: choose contacts of one kind."))
    return contacts, refused


def _screen(
    ids: Sequence[int], user: User | None, original_id: int | None, chosen: Mapping[str, int] | None = None
) -> MergeScreen:
    contacts, refused = _load(ids, user)
    if refused:
        return MergeScreen(contacts, None, [], [], [], refused, set())
    by_id = {c.id: c for c in contacts}
    if original_id not in by_id:
        original_id = contacts[0].id
    given = [c.id for c in contacts]

    def order_for(first: int) -> list[int]:
        return [first, *(cid for cid in given if cid != first)]

    order = order_for(original_id)
    contacts = [by_id[cid] for cid in order]
    states = {c.id: contact_to_dict(c) for c in contacts}
    photos = set(
        db.session.scalars(select(ContactPhoto.contact_id).where(ContactPhoto.contact_id.in_(given)))
    )
    chosen = chosen or {}

    def make_row(name: str, label: str, shown: Any) -> Row:
        raw = [_value(states[cid], name) for cid in order]
        return Row(
            key=name,
            label=label,
            values=[(cid, shown(name, value), _filled(value)) for cid, value in zip(order, raw, strict=True)],
            same=all(v == raw[0] for v in raw),
        )

    rows: list[Row] = []
    kind = contacts[0].kind
    custom_keys = [
        f"custom.{key}"
        for key, field_def in all_fields().items()
        if kind in field_def.kinds and any(_filled(s["custom"].get(key)) for s in states.values())
    ]
    for name in (*CHOSEN_FIELDS, *custom_keys):
        row = make_row(name, field_label(name), format_value)
        if not any(filled for _cid, _shown, filled in row.values):
            continue
        if not row.same:
            row.choosable = set(order)
            row.defaults = {first: _default_for(name, states, order_for(first)) for first in order}
            picked = chosen.get(name)
            row.chosen = picked if picked in row.choosable else row.defaults[original_id]
        rows.append(row)
    if len(photos) >= 2:
        row = Row(
            key="photo",
            label=field_label("photo"),
            values=[(cid, "", cid in photos) for cid in order],
            same=False,
            choosable=set(photos),
        )
        row.defaults = {first: next(cid for cid in order_for(first) if cid in photos) for first in order}
        picked = chosen.get("photo")
        row.chosen = picked if picked in photos else row.defaults[original_id]
        rows.append(row)

    automatic = []
    for name in ANY_TRUE_FIELDS:
        row = make_row(name, field_label(name), format_value)
        if not row.same:
            row.note = _("Yes if any contact has it")
        automatic.append(row)
    if len(photos) == 1:
        row = Row("photo", field_label("photo"), [(cid, "", cid in photos) for cid in order], same=False)
        row.note = _("The only photo is kept")
        automatic.append(row)

    combined = []
    for name in COMBINED_FIELDS:
        row = make_row(name, field_label(name), format_value)
        if any(filled for _cid, _shown, filled in row.values):
            combined.append(row)
    return MergeScreen(contacts, original_id, rows, combined, automatic, [], photos)


def _render_merge(
    ids: Sequence[int],
    original_id: int | None,
    chosen: Mapping[str, int] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    status: int = 200,
) -> Any:
    user = request_user()
    if len(ids) < 2:
        return render_template(
            "duplicates/merge.html", screen=None, problem=_("Choose at least two contacts to merge.")
        ), 400
    if len(ids) > MAX_MERGE:
        return render_template(
            "duplicates/merge.html",
            screen=None,
            problem=_("At most %(num)d contacts can be merged at once.", num=MAX_MERGE),
        ), 400
    screen = _screen(ids, user, original_id, chosen)
    if screen.refused and status < 400:
        status = 403
    messages = []
    for key, texts in (errors or {}).items():
        where = _error_place(key, screen)
        messages.extend(f"{where}: {merge_message(t)}" if where else merge_message(t) for t in texts)
    return render_template(
        "duplicates/merge.html", screen=screen, problem=None, errors=messages, ids=ids
    ), status


def _error_place(key: str, screen: MergeScreen) -> str:
    """Where a service error applies, in words: a field, or the contact it names."""
    if key.startswith("fields."):
        return field_label(key[len("fields.") :])
    match = re.match(r"^merged_ids\[(\d+)\]$", key)
    if match:
        others = [c for c in screen.contacts if c.id != screen.original_id]
        index = int(match.group(1))
        if index < len(others):
            return f"{others[index].display_name} ({others[index].number})"
    if key == "original_id":
        return _("Original")
    return ""


@bp.route("/contacts/merge", methods=["GET", "POST"])
def merge() -> Any:
    if request.method == "GET":
        ids = _ids_arg(request.args.getlist("ids"))
        original = _ids_arg([request.args.get("original", "")])
        return _render_merge(ids, original[0] if original else (ids[0] if ids else None))
    user = request_user()
    ids = _ids_arg(request.form.getlist("ids"))
    original = _ids_arg([request.form.get("original_id", "")])
    original_id = original[0] if original and original[0] in ids else None
    chosen = {
        key[len("field.") :]: int(value)
        for key, value in request.form.items()
        if key.startswith("field.") and value.isdigit() and len(value) < 11
    }
    if request.form.get("refresh"):  # without the script: defaults recomputed for the chosen original
        return _render_merge(ids, original_id)
    if original_id is None or len(ids) < 2:
        return _render_merge(ids, original_id, chosen, {"original_id": [_("Choose the original.")]}, 422)
    screen = _screen(ids, user, original_id)
    if screen.refused:
        return _render_merge(ids, original_id, chosen)
    # Only fields the screen offered: a value left out keeps the service's own rule.
    offered = {row.key: row.choosable for row in screen.rows if row.choosable}
    fields = {name: cid for name, cid in chosen.items() if name in offered and cid in offered[name]}
    try:
        record = merge_svc.merge_contacts(
            original_id, [cid for cid in ids if cid != original_id], fields, user, SOURCE
        )
    except ValidationError as exc:
        return _render_merge(ids, original_id, chosen, exc.errors, 422)
    kept = get_contact(record.original_id, user, include_deleted=True)
    flash(
        ngettext(
            "%(num)d contact merged into %(name)s.",
            "%(num)d contacts merged into %(name)s.",
            len(record.merged_ids),
            name=kept.display_name,
        ),
        "success",
    )
    return redirect(url_for(".merge_done", merge_id=record.id))


def mass_merge(ids: Sequence[int], back: str) -> Any:
    """The list's "Merge duplicates" mass action: the merge screen for the selection."""
    if len(ids) < 2:
        flash(_("Select at least two contacts to merge."), "error")
        return redirect(back)
    return redirect(url_for("duplicate_pages.merge", ids=list(ids)))


# -- after a merge: the result and its undo --------------------------------------------------------------


def _visible_contact(contact_id: int, user: User | None) -> Contact | None:
    contact = db.session.get(Contact, contact_id)
    if contact is None or not access.can(contact, user, "read"):
        return None
    return contact


@bp.route("/merges/<id:merge_id>")
def merge_done(merge_id: int) -> Any:
    user = request_user()
    record = merge_svc.get_merge(merge_id, user)
    original = get_contact(record.original_id, user, include_deleted=True)
    conflicts = merge_svc.undo_conflicts(record) if record.undone_at is None else []
    can_write = access.can(original, user, "write")
    snapshot = record.snapshot or {}
    changes = [
        {"label": field_label(name), "old": format_value(name, old), "new": format_value(name, new)}
        for name, (old, new) in (snapshot.get("changes") or {}).items()
        if name != "custom"
    ]
    before_custom = (snapshot.get("before") or {}).get("custom") or {}
    after_custom = (snapshot.get("after") or {}).get("custom") or {}
    for key in sorted(set(before_custom) | set(after_custom)):
        if before_custom.get(key) != after_custom.get(key):
            path = f"custom.{key}"
            changes.append(
                {
                    "label": field_label(path),
                    "old": format_value(path, before_custom.get(key)),
                    "new": format_value(path, after_custom.get(key)),
                }
            )
    added = {name: len(items) for name, items in (snapshot.get("added") or {}).items() if items}
    moved = {name: len(rows) for name, rows in (snapshot.get("moved") or {}).items() if rows}
    merged = [(cid, _visible_contact(cid, user)) for cid in record.merged_ids]
    return render_template(
        "duplicates/merge_done.html",
        record=record,
        original=original,
        merged=merged,
        changes=changes,
        added=added,
        moved=moved,
        conflicts=[merge_message(c) for c in conflicts],
        can_undo=record.undone_at is None and not conflicts and can_write,
        can_write=can_write,
        actor=db.session.get(User, record.user_id) if record.user_id else None,
    )


@bp.route("/merges/<id:merge_id>/undo", methods=["POST"])
def undo(merge_id: int) -> Any:
    user = request_user()
    try:
        record = merge_svc.undo_merge(merge_id, user, SOURCE)
    except Conflict as exc:
        reasons = exc.details.get("conflicts") or [exc.message]
        flash(
            _("The merge cannot be undone exactly:") + " " + "; ".join(merge_message(r) for r in reasons),
            "error",
        )
        return redirect(url_for(".merge_done", merge_id=merge_id))
    restored = [c for c in (_visible_contact(cid, user) for cid in record.merged_ids) if c is not None]
    flash(
        ngettext(
            "Merge undone: %(num)d contact is back (%(names)s).",
            "Merge undone: %(num)d contacts are back (%(names)s).",
            len(record.merged_ids),
            names=", ".join(c.display_name for c in restored) or "—",
        ),
        "success",
    )
    return redirect(url_for(".merge_done", merge_id=merge_id))
