"""The importer shared by every format: records in, contacts created or updated, a report out.

:func:`open_source` sniffs a file (format, then for CSV the encoding, delimiter and header) and maps
its columns; :func:`preview` shows the first rows as they would be imported; :func:`run_import`
applies records and :func:`import_file` does both. :func:`revert_import` undoes an import.

How records are applied
-----------------------
Records are taken in chunks (``chunk_size``, :data:`CHUNK_SIZE`), one transaction per chunk. Each
chunk is first read (:meth:`Importer._read_chunk`: what each record holds and, in mode create, its
validation and rows, :func:`~crmcore.services.contacts.new_contact`): the part that reads no stored
contact, done a chunk ahead in a second process for large files
(:mod:`crmcore.interchange.read_ahead`). Then:

1. contacts to update are found at once on the natural key (``email``, ``phone``, ``number`` or
   ``external_id``), among the live contacts the user may see; a key matching two contacts rejects
   the record;
2. organizations named by records are found at once (same name, ignoring case and accents) and the
   missing ones created in bulk;
3. each new contact is validated exactly as :func:`~crmcore.services.contacts.create_contact` does
   (:func:`~crmcore.services.contacts.prepare_contact`, sharing one read of the lists and fields;
   in mode create while reading, its organization set once found); the valid ones are written
   together by :func:`~crmcore.services.contacts.write_contacts` inside a savepoint. If that batch
   fails (a plugin's ``contacts_imported`` raising, a database error), it is rolled back and its
   records are written one by one, each in its own savepoint, so only the guilty one is rejected;
4. updates, and records with an ``after_save`` (vCards), go one by one through the usual services,
   each in a savepoint: a record is applied whole or rejected, never half-written;
5. organizations created for records that were all rejected are removed before the commit.

A dry run does all of it, then rolls everything back: the report says exactly what would happen.
Updates merge: values present in the file replace the stored ones, emails, phones and tags are added
to the stored ones, an address replaces the stored address of the same kind part by part, empty
cells change nothing.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from flask import current_app
from sqlalchemy import delete, select, update

from crmcore.errors import Conflict, CrmError, NotFound, ValidationError
from crmcore.extensions import db
from crmcore.interchange import ImportRecord, ImportReport, Rejection, read_ahead
from crmcore.interchange.csv_io import CsvReader, RowContext, _Prefixed, read_records
from crmcore.interchange.headers import Column, apply_overrides, parse_overrides, suggest
from crmcore.models import (
    Contact,
    ContactEmail,
    ContactPhone,
    HistoryEntry,
    ImportBatch,
    ImportBatchItem,
    Note,
    User,
    utcnow,
)
from crmcore.services import access, collector, lookups
from crmcore.services import contacts as svc
from crmcore.services import notes as notes_svc
from crmcore.services.bulk_insert import insert_rows
from crmcore.services.fields import all_fields
from crmcore.services.phones import InvalidPhone, to_e164
from crmcore.services.serialize import audited_state, contact_to_dict
from crmcore.services.text import fold
from crmcore.services.transactions import savepoint, transaction

log = logging.getLogger("crmcore.import")

MODES = ("create", "update", "create-or-update")
MATCH_KEYS = ("email", "phone", "number", "external_id")
FORMATS = ("csv", "vcf", "json")
#: Rejections listed in a report; ``rejected_total`` counts them all.
MAX_LISTED = 1000
MAX_WARNINGS = 1000
#: Records per chunk (one transaction) when the options name no other size. Each commit writes out
#: every index page its chunk touched: 2,000 records write about a quarter of the pages that four
#: chunks of 500 would, and still hold the database's lock and report progress every third of a second.
CHUNK_SIZE = 2000

Progress = Callable[[int, ImportReport], None]


@dataclass
class ImportOptions:
    mode: str = "create"
    match: str = "email"
    dry_run: bool = False
    file_name: str | None = None
    format: str = "csv"
    source: str = "import"
    #: None: :data:`CHUNK_SIZE`.
    chunk_size: int | None = None

    def check(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.chunk_size is None:
            self.chunk_size = CHUNK_SIZE
        if self.mode == "upsert":
            self.mode = "create-or-update"
        if self.mode not in MODES:
            errors["mode"] = [f"must be one of: {', '.join(MODES)}"]
        if self.match not in MATCH_KEYS:
            errors["match"] = [f"must be one of: {', '.join(MATCH_KEYS)}"]
        if not 1 <= self.chunk_size <= 10000:
            errors["chunk_size"] = ["must be between 1 and 10000"]
        if errors:
            raise ValidationError(errors)


class _DryRun(Exception):
    pass


@dataclass
class _Row:
    record: ImportRecord
    data: dict[str, Any]
    organization: str | None = None
    notes: list[str] = field(default_factory=list)
    number: str | None = None
    keys: set[str] = field(default_factory=set)
    match: int | None = None
    error: str | None = None
    #: Nothing to import (every cell empty).
    empty: bool = False
    #: A creation, validated, its rows ready (:func:`~crmcore.services.contacts.new_contact`); ``data``
    #: is not needed any more then (and not carried from the reading process).
    new: svc.NewContact | None = None

    @property
    def kind(self) -> str:
        return self.new.kind if self.new is not None else self.data.get("kind") or "person"

    @property
    def organization_id(self) -> int | None:
        return self.new.organization_id if self.new is not None else self.data.get("organization_id")


class Importer:
    """One import run. Use :func:`run_import`."""

    def __init__(
        self,
        user: User | None,
        options: ImportOptions,
        progress: Progress | None = None,
        source: Source | None = None,
    ) -> None:
        options.check()
        self.source = source
        self.user = user
        self.options = options
        self.progress = progress
        self.report = ImportReport(dry_run=options.dry_run)
        self.done = 0
        self.batch_id = f"imp-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        self.cache = svc.ValidationCache()
        self.tag_cache: dict[str, tuple[int, str]] = {}
        self.organizations: dict[str, int] = {}
        self.region = current_app.config.get("DEFAULT_COUNTRY")
        # Per chunk:
        self._items: list[dict[str, Any]] = []
        self._loaded: dict[int, Contact] = {}
        self._new_organizations: dict[int, str] = {}
        self._used_organizations: set[int] = set()

    # -- running --------------------------------------------------------------------------------

    def run(self, records: Iterable[ImportRecord]) -> ImportReport:
        if self.options.dry_run:
            try:
                with transaction(), savepoint():
                    self._start()
                    self._process(records)
                    raise _DryRun
            except _DryRun:
                pass
            self.report.batch = None
            return self.report
        with transaction():
            self._start()
        try:
            self._process(records)
        finally:
            with transaction():
                batch = db.session.get(ImportBatch, self.batch_id)
                if batch is not None:
                    batch.created = self.report.created
                    batch.updated = self.report.updated
                    batch.skipped = self.report.skipped
                    batch.rejected = self.report.rejected_total
                    batch.finished_at = utcnow()
        return self.report

    def _start(self) -> None:
        db.session.add(
            ImportBatch(
                id=self.batch_id,
                file_name=(self.options.file_name or "")[:255] or None,
                format=self.options.format,
                mode=self.options.mode,
                match=self.options.match if self.options.mode != "create" else None,
                user_id=self.user.id if self.user else None,
                source=self.options.source,
            )
        )
        db.session.flush()
        self.report.batch = self.batch_id

    def _process(self, records: Iterable[ImportRecord]) -> None:
        chunks = self._read(records)
        with collector.bulk_work():  # (the process reading ahead is forked inside: it inherits it)
            try:
                for rows in chunks:
                    self._chunk(rows)
            finally:
                chunks.close()  # a second process reading ahead stops now, not when collected

    def _read(self, records: Iterable[ImportRecord]) -> Iterator[list[_Row]]:
        """Chunks of rows read and, for creations, validated: here, or ahead in a second process
        while this one writes (see :mod:`crmcore.interchange.read_ahead`)."""
        source = self.source

        def chunks() -> Iterator[tuple[list[_Row], int | None]]:
            for chunk in _chunks(records, self.options.chunk_size or CHUNK_SIZE):
                yield self._read_chunk(chunk), source.bytes_read if source is not None else None

        if not read_ahead.wanted(self.options.format, source.size if source is not None else None):
            yield from (rows for rows, _position in chunks())
            return
        for rows, position in read_ahead.iterate(chunks()):
            if source is not None and position is not None:
                source.bytes_read = position  # for progress bars: the file is read in the other process
            yield rows

    def _chunk(self, rows: list[_Row]) -> None:
        with transaction():
            self._apply_chunk(rows)
        self._items = []
        self._loaded = {}
        self._new_organizations = {}
        self._used_organizations = set()
        if len(self.organizations) > 50000:
            self.organizations.clear()
            self.cache.contacts.clear()
        if len(self.tag_cache) > 50000:
            self.tag_cache.clear()
        self.done += len(rows)
        if self.progress is not None:
            self.progress(self.done, self.report)

    def _read_chunk(self, records: list[ImportRecord]) -> list[_Row]:
        """What each record holds and, in mode create, its validated state: the part of a chunk that
        reads no stored contact, so that it can run in another process. One row per record."""
        rows = []
        for record in records:
            data = dict(record.data or {})
            # The row holds the data from now on (once, when it travels to another process).
            row = _Row(_without_data(record), data)
            rows.append(row)
            if record.error:
                row.error = record.error
                continue
            if not any(v not in (None, "", [], {}) for k, v in data.items() if k != "kind"):
                row.empty = True
                continue
            row.organization = _text(data.pop("organization", None))
            notes = data.pop("notes", None)
            row.notes = [notes] if isinstance(notes, str) else [n for n in notes or [] if _text(n)]
            row.number = _text(data.get("number"))
            if self.options.mode == "create":  # nothing to match: no natural keys to compute
                self._settle_kind(row)
                self._prepare(row)
            else:
                row.keys = self._keys(row)
        return rows

    def _prepare(self, row: _Row) -> None:
        """Validate a creation as create_contact does and compute its rows. Its organization, found
        or created later by name, is linked then (it exists, is live and is an organization)."""
        try:
            row.notes = [notes_svc.check_note(note) for note in row.notes]
            row.new = svc.new_contact(svc.prepare_contact(_for_creation(row.data), self.user, self.cache))
            row.data = {}
        except ValidationError as exc:
            row.error = _reason(exc, row.record.sources, notes=True)

    def _apply_chunk(self, all_rows: list[_Row]) -> None:
        rows = []
        for row in all_rows:
            for warning in row.record.warnings:
                self._warn(row.record.position, warning)
            if row.empty:
                self.report.skipped += 1
            elif row.error:
                self._reject(row.record.position, row.error)
            else:
                rows.append(row)
        if self.options.mode != "create":
            self._find_matches(rows)
            for row in rows:
                self._settle_kind(row)
        self._organizations(rows)
        pending: list[_Row] = []
        pending_keys: set[str] = set()
        for row in rows:
            if row.error:
                self._reject(row.record.position, row.error)
                continue
            if row.match is None and row.keys & pending_keys and self.options.mode != "create":
                # The file names this contact twice: create the first, then update it with the second.
                self._flush(pending)
                pending, pending_keys = [], set()
                self._find_matches([row])
                if row.error:
                    self._reject(row.record.position, row.error)
                    continue
            if row.match is not None:
                self._update(row)
                continue
            if self.options.mode == "update":
                self.report.skipped += 1
                key = self.options.match
                self._warn(
                    row.record.position,
                    f"no contact has {key} {', '.join(sorted(row.keys))}: skipped"
                    if row.keys
                    else f"no {key} to find the contact to update: skipped",
                )
                continue
            if row.new is None:
                self._prepare(row)
                if row.error:
                    self._reject(row.record.position, row.error)
                    continue
            if row.record.after_save is not None:
                self._create_one(row)
                continue
            pending.append(row)
            pending_keys |= row.keys
        self._flush(pending)
        self._drop_unused_organizations()
        insert_rows(ImportBatchItem.__table__, self._items)

    # -- creating -------------------------------------------------------------------------------

    def _flush(self, pending: list[_Row]) -> None:
        if not pending:
            return
        try:
            with savepoint():
                ids = svc.write_contacts(
                    [row.new for row in pending],  # type: ignore[misc]
                    self.user,
                    self.options.source,
                    import_batch=self.batch_id,
                    tag_cache=self.tag_cache,
                )
                drafts = [_Ref(contact_id, 1) for contact_id in ids]
                notes = [
                    (draft, note) for row, draft in zip(pending, drafts, strict=True) for note in row.notes
                ]
                notes_svc.add_notes(notes, "internal", self.user, self.options.source)  # type: ignore[arg-type]
        except Exception as exc:  # a plugin hook or the database refused the batch: find the culprit
            log.info("import batch of %d failed (%s); retrying record by record", len(pending), exc)
            self.tag_cache.clear()
            for row in pending:
                self._create_one(row)
            return
        for row, contact_id in zip(pending, ids, strict=True):
            self._item(contact_id, "created")
            organization_id = row.new.organization_id  # type: ignore[union-attr]
            if organization_id:
                self._used_organizations.add(organization_id)
        self.report.created += len(pending)

    def _create_one(self, row: _Row) -> None:
        try:
            with savepoint():
                (contact_id,) = svc.write_contacts(
                    [row.new],  # type: ignore[list-item]
                    self.user,
                    self.options.source,
                    import_batch=self.batch_id,
                    tag_cache=self.tag_cache,
                )
                contact = db.session.get(Contact, contact_id)
                notes_svc.add_notes(
                    [(contact, note) for note in row.notes], "internal", self.user, self.options.source
                )
                if row.record.after_save is not None:
                    row.record.after_save(contact)
        except Exception as exc:
            self._reject(row.record.position, _reason(exc, row.record.sources))
            return
        self._item(contact.id, "created")
        if contact.organization_id:
            self._used_organizations.add(contact.organization_id)
        self.report.created += 1

    # -- updating -------------------------------------------------------------------------------

    def _update(self, row: _Row) -> None:
        contact = self._loaded.get(row.match) if row.match else None
        try:
            with savepoint():
                if contact is None:
                    contact = svc.get_contact(row.match, self.user, "write")  # type: ignore[arg-type]
                previous_batch, version = contact.import_batch, contact.version
                data = _merged(contact, row.data, self.region)
                notes = [notes_svc.check_note(note) for note in row.notes]
                contact = svc.update_contact(
                    contact.id,
                    data,
                    self.user,
                    self.options.source,
                    cache=self.cache,
                    import_batch=self.batch_id,
                )
                note_ids = notes_svc.add_notes(
                    [(contact, note) for note in notes], "internal", self.user, self.options.source
                )
                if row.record.after_save is not None:
                    row.record.after_save(contact)
        except Exception as exc:
            self._reject(row.record.position, _reason(exc, row.record.sources, notes=True))
            return
        changed = contact.version != version
        if not changed and not note_ids:
            self.report.skipped += 1
            return
        self._item(
            contact.id,
            "updated",
            revision=contact.version if changed else None,
            previous_batch=previous_batch,
            note_ids=note_ids or None,
        )
        if contact.organization_id:
            self._used_organizations.add(contact.organization_id)
        self.report.updated += 1

    # -- matching -------------------------------------------------------------------------------

    def _keys(self, row: _Row) -> set[str]:
        key, data = self.options.match, row.data
        if key == "email":
            return {str(e.get("address") or "").strip().lower() for e in data.get("emails") or []} - {""}
        if key == "phone":
            region = data.get("country") if isinstance(data.get("country"), str) else None
            out = set()
            for phone in data.get("phones") or []:
                try:
                    out.add(to_e164(str(phone.get("number") or ""), region or self.region))
                except InvalidPhone:
                    continue
            return out
        if key == "number":
            return {row.number} if row.number else set()
        external = _text(data.get("external_id"))
        return {external} if external else set()

    def _find_matches(self, rows: list[_Row]) -> None:
        wanted = sorted({key for row in rows for key in row.keys})
        if not wanted:
            return
        column = {
            "email": ContactEmail.address_key,
            "phone": ContactPhone.e164,
            "number": Contact.number,
            "external_id": Contact.external_id,
        }[self.options.match]
        query = select(column, Contact.id, Contact.number).where(
            Contact.deleted_at.is_(None), access.visible_filter(self.user)
        )
        if self.options.match == "email":
            query = query.select_from(ContactEmail).join(Contact, Contact.id == ContactEmail.contact_id)
        elif self.options.match == "phone":
            query = query.select_from(ContactPhone).join(Contact, Contact.id == ContactPhone.contact_id)
        found: dict[str, dict[int, str]] = {}
        for start in range(0, len(wanted), 500):
            for value, contact_id, number in db.session.execute(
                query.where(column.in_(wanted[start : start + 500]))
            ):
                found.setdefault(value, {})[contact_id] = number
        matched: set[int] = set()
        for row in rows:
            hits: dict[int, str] = {}
            for key in row.keys:
                hits.update(found.get(key, {}))
            if len(hits) > 1:
                row.error = (
                    f"{self.options.match} {', '.join(sorted(row.keys))} matches several contacts: "
                    f"{', '.join(sorted(hits.values()))}"
                )
            elif hits:
                row.match = next(iter(hits))
                matched.add(row.match)
        missing = matched - set(self._loaded)
        if missing:
            for contact in db.session.scalars(
                select(Contact).where(Contact.id.in_(missing)).options(*svc.EAGER)
            ):
                self._loaded[contact.id] = contact

    def _settle_kind(self, row: _Row) -> None:
        """A new contact without a kind: a person, unless it has only an organization's name. A contact
        linked to an organization must be a person."""
        data = row.data
        if row.match is not None:
            matched = self._loaded.get(row.match)
            if matched is not None and (data.get("kind") or matched.kind) == "organization":
                row.organization = None
            return
        if not data.get("kind"):
            named = data.get("first_name") or data.get("last_name")
            if not named and not data.get("name") and row.organization:
                data["name"], row.organization = row.organization, None
                if "organization" in row.record.sources:
                    sources = row.record.sources  # shared by rows alike: changed as a copy
                    row.record.sources = {**sources, "name": sources["organization"]}
            data["kind"] = "organization" if not named and data.get("name") else "person"
        if data["kind"] == "organization":
            row.organization = None

    # -- organizations --------------------------------------------------------------------------

    def _organizations(self, rows: list[_Row]) -> None:
        named = [
            row
            for row in rows
            if row.organization and not row.error and row.organization_id is None and row.kind == "person"
        ]
        if not named:
            return
        names: dict[str, str] = {}
        keys = [fold(row.organization)[:400] for row in named]  # type: ignore[arg-type]
        for row, key in zip(named, keys, strict=True):
            names.setdefault(key, row.organization)  # type: ignore[arg-type]
        unknown = [key for key in names if key not in self.organizations]
        for start in range(0, len(unknown), 500):
            for contact_id, key in db.session.execute(
                select(Contact.id, Contact.sort_key)
                .where(
                    Contact.kind == "organization",
                    Contact.deleted_at.is_(None),
                    Contact.sort_key.in_(unknown[start : start + 500]),
                    access.visible_filter(self.user),
                )
                .order_by(Contact.id.desc())
            ):
                self.organizations[key] = contact_id  # the oldest wins (ordered by id descending)
        failed: dict[str, str] = {}
        to_create = [(key, names[key]) for key in unknown if key not in self.organizations]
        cleans = []
        for key, name in to_create:
            try:
                cleans.append(
                    (key, svc.prepare_contact({"kind": "organization", "name": name}, self.user, self.cache))
                )
            except ValidationError as exc:
                failed[key] = f"organization {name!r}: {_reason(exc, {})}"
        if cleans:
            ids = svc.insert_contacts(
                [clean for _key, clean in cleans],
                self.user,
                self.options.source,
                import_batch=self.batch_id,
                tag_cache=self.tag_cache,
            )
            for (key, _clean), contact_id in zip(cleans, ids, strict=True):
                self.organizations[key] = contact_id
                self._new_organizations[contact_id] = key
        # The validation of each person checks its organization: these exist, are organizations, are live.
        for key in names:
            if key in self.organizations:
                contact_id = self.organizations[key]
                self.cache.contacts[contact_id] = _Organization(contact_id)
        for row, key in zip(named, keys, strict=True):
            if key in failed:
                row.error = failed[key]
            elif row.new is not None:
                row.new.link_organization(self.organizations[key])
            else:
                row.data["organization_id"] = self.organizations[key]

    def _drop_unused_organizations(self) -> None:
        unused = [i for i in self._new_organizations if i not in self._used_organizations]
        if unused:
            # Created in this chunk for records that were all rejected: never committed, never seen.
            db.session.execute(delete(Contact).where(Contact.id.in_(unused)))
            for contact_id in unused:
                self.organizations.pop(self._new_organizations[contact_id], None)
                self.cache.contacts.pop(contact_id, None)
        kept = [i for i in self._new_organizations if i in self._used_organizations]
        for contact_id in kept:
            self._item(contact_id, "created")
        self.report.organizations += len(kept)

    # -- bookkeeping ----------------------------------------------------------------------------

    def _item(self, contact_id: int, action: str, **extra: Any) -> None:
        self._items.append(
            {
                "batch_id": self.batch_id,
                "contact_id": contact_id,
                "action": action,
                "revision": extra.get("revision"),
                "previous_batch": extra.get("previous_batch"),
                "note_ids": extra.get("note_ids"),
            }
        )

    def _warn(self, position: int | str, text: str) -> None:
        if len(self.report.warnings) < MAX_WARNINGS:
            self.report.warnings.append(Rejection(position, text))

    def _reject(self, position: int | str, reason: str) -> None:
        self.report.rejected_total += 1
        if len(self.report.rejected) < MAX_LISTED:
            self.report.rejected.append(Rejection(position, reason))


@dataclass
class _Organization:
    """What validating a link to an organization reads (see ``ValidationCache.contacts``)."""

    id: int
    kind: str = "organization"
    deleted_at: None = None


@dataclass
class _Ref:
    """What the bulk note writer needs of a contact created by :func:`insert_contacts`."""

    id: int
    version: int


def _chunks(records: Iterable[ImportRecord], size: int) -> Iterator[list[ImportRecord]]:
    chunk: list[ImportRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _without_data(record: ImportRecord) -> ImportRecord:
    # dataclasses.replace, without its look at the fields: once per record of an import.
    return ImportRecord(
        record.position, None, record.error, record.after_save, record.warnings, record.sources
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _for_creation(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("kind"):
        return data
    if data.get("first_name") or data.get("last_name") or not data.get("name"):
        return {**data, "kind": "person"}
    return {**data, "kind": "organization"}


#: Keys of an exported contact that an import never writes (no version check either: the file wins).
_COMPUTED = ("id", "number", "display_name", "created_at", "updated_at", "version")


def _merged(contact: Contact, data: dict[str, Any], default_region: str | None) -> dict[str, Any]:
    """The update that brings ``data`` into ``contact`` (see the module's docstring)."""
    current = contact_to_dict(contact)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _COMPUTED or value in (None, "", [], {}):
            continue
        if key == "emails":
            have = {e["address"].lower() for e in current["emails"]}
            has_primary = any(e["primary"] for e in current["emails"])
            new = [{**e, "primary": bool(e.get("primary")) and not has_primary} for e in value]
            new = [e for e in new if str(e.get("address") or "").strip().lower() not in have]
            if new:
                out["emails"] = current["emails"] + new
        elif key == "phones":
            region = data.get("country") or current["country"] or default_region
            have = {p["e164"] for p in current["phones"]}
            new = []
            for phone in value:
                try:
                    if to_e164(str(phone.get("number") or ""), region) in have:
                        continue
                except InvalidPhone:
                    pass  # the validation says why
                new.append(phone)
            if new:
                out["phones"] = current["phones"] + new
        elif key == "addresses":
            addresses = [dict(a) for a in current["addresses"]]
            for address in value:
                same = next((a for a in addresses if a["kind"] == (address.get("kind") or "main")), None)
                if same is None:
                    addresses.append(address)
                else:
                    same.update({k: v for k, v in address.items() if v not in (None, "")})
            if addresses != current["addresses"]:
                out["addresses"] = addresses
        elif key == "tags":
            have = {fold(t) for t in current["tags"]}
            new = [t for t in value if fold(str(t)) not in have]
            if new:
                out["tags"] = current["tags"] + new
        elif key == "social":
            out["social"] = {**current["social"], **value}
        elif key == "kind" and value == current["kind"]:
            continue
        else:
            out[key] = value
    return out


def _reason(exc: BaseException, sources: dict[str, str], notes: bool = False) -> str:
    """A rejection reason naming each bad field, and the column it came from when known."""
    if isinstance(exc, ValidationError):
        parts = []
        for path, messages in exc.errors.items():
            origin = _origin(path, sources)
            where = f"{path} (column {origin!r})" if origin else path
            if notes and path == "body":
                where = "notes"
            parts.append(f"{where}: {'; '.join(messages)}")
        return "; ".join(parts)
    if isinstance(exc, CrmError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _origin(path: str, sources: dict[str, str]) -> str | None:
    best = None
    for prefix, origin in sources.items():
        matches = path == prefix or path.startswith((prefix + ".", prefix + "["))
        if matches and (best is None or len(prefix) > len(best[0])):
            best = (prefix, origin)
    return best[1] if best else None


# -- entry points ----------------------------------------------------------------------------------


def run_import(
    records: Iterable[ImportRecord],
    user: User | None = None,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    source: Source | None = None,
) -> ImportReport:
    """Apply ``records`` (from any reader; ``source`` when they are its records) and return the report.
    See the module's docstring."""
    return Importer(user, options or ImportOptions(), progress, source).run(records)


class Source:
    """A file opened for import: its format and, for CSV, the reader and the column mapping."""

    def __init__(
        self,
        stream: IO[bytes],
        file_name: str | None = None,
        format: str | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        overrides: Iterable[str] = (),
        size: int | None = None,
    ) -> None:
        head = stream.read(4096)
        self.stream: IO[bytes] = io.BufferedReader(_Prefixed(head, stream), 1 << 16)
        self.size = size
        self.format = (format or detect_format(file_name, head)).lower()
        if self.format not in FORMATS:
            raise ValidationError({"format": [f"must be one of: {', '.join(FORMATS)}"]})
        self.reader: CsvReader | None = None
        self.columns: list[Column] = []
        self._counted = _Counter(self.stream)
        self._read_elsewhere: int | None = None
        if self.format == "csv":
            self.reader = CsvReader(self.stream, encoding, delimiter, size)
            if not self.reader.header:
                raise ValidationError({"file": ["the file is empty: no header line"]})
            fields = all_fields()
            self.columns = apply_overrides(
                suggest(self.reader.header, fields),
                parse_overrides(overrides),
                fields,
                lookups.keys("phone_type"),
            )
            if not any(column.field for column in self.columns):
                raise ValidationError(
                    {
                        "map": [
                            "no column is a contact field (columns: "
                            + ", ".join(repr(h) for h in self.reader.header[:20])
                            + "); name them with COLUMN=FIELD, e.g. 'Nom=last_name'"
                        ]
                    }
                )
        elif overrides:
            raise ValidationError({"map": ["--map applies to CSV files only"]})

    @property
    def bytes_read(self) -> int:
        if self._read_elsewhere is not None:
            return self._read_elsewhere
        return self.reader.bytes_read if self.reader is not None else self._counted.count

    @bytes_read.setter
    def bytes_read(self, value: int) -> None:
        """Where the process reading this file ahead has come to."""
        self._read_elsewhere = value

    def records(self) -> Iterator[ImportRecord]:
        if self.format == "csv":
            assert self.reader is not None
            return read_records(self.reader, self.columns, row_context())
        if self.format == "vcf":
            from crmcore.interchange.vcard import read_cards

            return read_cards(self._counted)  # type: ignore[arg-type]
        return read_json(self._counted)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format}
        if self.reader is not None:
            out.update(
                encoding=self.reader.encoding,
                delimiter=self.reader.delimiter,
                header_line=self.reader.header_line,
                columns=[c.to_dict() for c in self.columns],
            )
        return out


class _Counter:
    """Counts the bytes read through it (progress of vCard and JSON imports)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.stream.readline(size)  # type: ignore[attr-defined]
        self.count += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def readable(self) -> bool:
        return True


def row_context() -> RowContext:
    labels: dict[str, str] = {}
    for value in lookups.values("phone_type"):
        for label in (value.key, value.label_en, value.label_fr):
            labels.setdefault(fold(label), value.key)
    country = (current_app.config.get("DEFAULT_COUNTRY") or "").upper()
    return RowContext(phone_labels=labels, date_order="mdy" if country in ("US", "PH", "FM") else "dmy")


def detect_format(file_name: str | None, head: bytes) -> str:
    """csv, vcf or json, from the file name's extension, else from the first bytes."""
    name = (file_name or "").lower()
    if name.endswith((".vcf", ".vcard")):
        return "vcf"
    if name.endswith((".json", ".jsonl", ".ndjson")):
        return "json"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:11].upper() == b"BEGIN:VCARD":
        return "vcf"
    if text[:1] in (b"[", b"{"):
        return "json"
    return "csv"


def read_json(stream: IO[bytes]) -> Iterator[ImportRecord]:
    """Records from a JSON array of contacts in the API's shape (what ``crm export --format json``
    writes) or from JSON Lines, read incrementally (constant memory). Position = item number."""
    import codecs

    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8-sig")()
    buffer, index, eof, position = "", 0, False, 0

    def more() -> bool:
        nonlocal buffer, index, eof
        chunk = stream.read(1 << 16)
        buffer = buffer[index:] + text_decoder.decode(chunk, final=not chunk)
        index = 0
        eof = not chunk
        return bool(chunk)

    more()
    while True:
        while True:
            while index < len(buffer) and buffer[index] in " \t\r\n,[]":
                index += 1
            if index < len(buffer) or eof:
                break
            more()
        if index >= len(buffer):
            return
        position += 1
        while True:
            try:
                item, end = decoder.raw_decode(buffer, index)
                break
            except json.JSONDecodeError as exc:
                if eof:
                    yield ImportRecord(position, error=f"item {position}: invalid JSON ({exc.msg})")
                    return
                more()
        index = end
        if isinstance(item, dict):
            yield ImportRecord(position, data=item)
        else:
            yield ImportRecord(
                position, error=f"item {position}: a contact is a JSON object, not {type(item).__name__}"
            )


def open_source(stream: IO[bytes], **kwargs: Any) -> Source:
    return Source(stream, **kwargs)


def preview(source: Source, rows: int = 10) -> dict[str, Any]:
    """The file's format, encoding, delimiter, columns and their fields, and its first ``rows`` records
    as they would be imported (in the API's JSON shape, or the reason they could not be read)."""
    out = source.describe()
    out["records"] = []
    for record in source.records():
        out["records"].append(
            {
                "position": record.position,
                "data": record.data,
                "error": record.error,
                "warnings": record.warnings,
            }
        )
        if len(out["records"]) >= rows:
            break
    return out


def import_file(
    stream: IO[bytes],
    user: User | None = None,
    options: ImportOptions | None = None,
    progress: Callable[[int, ImportReport, Source], None] | None = None,
    **source_options: Any,
) -> ImportReport:
    """Open ``stream`` (see :class:`Source` for ``file_name``, ``format``, ``encoding``, ``delimiter``,
    ``overrides``, ``size``) and import it."""
    options = options or ImportOptions()
    options.check()
    source = Source(stream, **source_options)
    options.format = source.format
    options.file_name = options.file_name or source_options.get("file_name")
    callback = (lambda done, report: progress(done, report, source)) if progress else None
    return run_import(source.records(), user, options, callback, source)


# -- history of imports and revert -------------------------------------------------------------------


def batch_to_dict(batch: ImportBatch) -> dict[str, Any]:
    return {
        "batch": batch.id,
        "file_name": batch.file_name,
        "format": batch.format,
        "mode": batch.mode,
        "match": batch.match,
        "user_id": batch.user_id,
        "created_at": batch.created_at.isoformat() if batch.created_at else None,
        "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
        "created": batch.created,
        "updated": batch.updated,
        "skipped": batch.skipped,
        "rejected": batch.rejected,
        "reverted_at": batch.reverted_at.isoformat() if batch.reverted_at else None,
    }


def list_batches(user: User | None = None, limit: int = 100) -> list[ImportBatch]:
    query = select(ImportBatch).order_by(ImportBatch.created_at.desc(), ImportBatch.id.desc()).limit(limit)
    if user is not None and not user.is_admin:
        query = query.where(ImportBatch.user_id == user.id)
    return list(db.session.scalars(query))


def get_batch(batch_id: str, user: User | None = None) -> ImportBatch:
    batch = db.session.get(ImportBatch, batch_id) if isinstance(batch_id, str) else None
    if batch is None or (user is not None and not user.is_admin and batch.user_id != user.id):
        raise NotFound(f"import {batch_id} not found")
    return batch


def revert_import(batch_id: str, user: User | None = None, source: str = "import") -> dict[str, Any]:
    """Undo import ``batch_id``: contacts it created are deleted (soft delete: they can be restored),
    contacts it updated get back the values it changed (unless changed again since: then they are
    kept and listed), notes it added are removed. One transaction per 500 contacts."""
    with transaction():
        batch = get_batch(batch_id, user)
        if batch.reverted_at is not None:
            raise Conflict(f"import {batch_id} was already reverted on {batch.reverted_at:%Y-%m-%d %H:%M}")
    result: dict[str, Any] = {"batch": batch_id, "deleted": 0, "restored": 0, "notes_removed": 0, "kept": []}
    last_id: int | None = None
    while True:
        with transaction():
            query = select(ImportBatchItem).where(ImportBatchItem.batch_id == batch_id)
            if last_id is not None:
                query = query.where(ImportBatchItem.id < last_id)
            items = list(db.session.scalars(query.order_by(ImportBatchItem.id.desc()).limit(500)))
            if not items:
                break
            last_id = items[-1].id
            contacts = {
                c.id: c
                for c in db.session.scalars(
                    select(Contact).where(Contact.id.in_({i.contact_id for i in items})).options(*svc.EAGER)
                )
            }
            for item in items:
                contact = contacts.get(item.contact_id)
                if contact is None:
                    continue
                try:
                    with savepoint():
                        _revert_item(item, contact, user, source, result)
                except CrmError as exc:
                    result["kept"].append({"contact": contact.number, "reason": exc.message})
    with transaction():
        batch = get_batch(batch_id, user)
        batch.reverted_at = utcnow()
        batch.reverted_by_id = user.id if user else None
    return result


def _revert_item(
    item: ImportBatchItem, contact: Contact, user: User | None, source: str, result: dict[str, Any]
) -> None:
    for note_id in item.note_ids or []:
        if db.session.get(Note, note_id) is not None:
            notes_svc.delete_note(contact.id, note_id, user, source)
            result["notes_removed"] += 1
    if item.action == "created":
        if contact.deleted_at is not None:
            return
        if contact.kind == "organization":
            others = db.session.scalar(
                select(Contact.number)
                .where(
                    Contact.organization_id == contact.id,
                    Contact.deleted_at.is_(None),
                    (Contact.import_batch != item.batch_id) | Contact.import_batch.is_(None),
                )
                .limit(1)
            )
            if others:
                result["kept"].append(
                    {"contact": contact.number, "reason": f"organization still has members ({others}...)"}
                )
                return
        svc.delete_contact(contact.id, user, source)
        result["deleted"] += 1
        return
    if item.revision is None:
        return
    entries = db.session.scalars(
        select(HistoryEntry).where(
            HistoryEntry.contact_id == contact.id,
            HistoryEntry.revision == item.revision,
            HistoryEntry.action == "update",
        )
    )
    current = audited_state(contact)
    data: dict[str, Any] = {}
    changed_since = []
    for entry in entries:
        if entry.field is None:
            continue
        if current.get(entry.field) != entry.new:
            changed_since.append(entry.field)
            continue
        if entry.field == "custom":
            old, new = entry.old or {}, entry.new or {}
            data["custom"] = {key: old.get(key) for key in set(old) | set(new)}
        else:
            data[entry.field] = entry.old
    if data:
        svc.update_contact(contact.id, data, user, source)
        result["restored"] += 1
    if contact.import_batch == item.batch_id:
        # Not an audited field: a plain UPDATE, without a new version.
        db.session.execute(
            update(Contact.__table__)
            .where(Contact.__table__.c.id == contact.id)
            .values(import_batch=item.previous_batch)
        )
        db.session.expire(contact, ["import_batch"])
    if changed_since:
        result["kept"].append(
            {
                "contact": contact.number,
                "reason": f"changed since the import, left as is: {', '.join(changed_since)}",
            }
        )
