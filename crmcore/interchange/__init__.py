"""Data in and out: CSV, vCard and JSON import/export, sharing one row-by-row importer.

A reader (CSV, vCard) turns a file into :class:`ImportRecord` items; the importer applies each
record whole or rejects it with its position and reason, and returns an :class:`ImportReport`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImportRecord:
    """One row or card: its position in the file (line number or card number) and the contact data
    in the API's JSON shape, or the reason it could not be read.

    ``after_save`` is called with the saved contact inside the same savepoint (e.g. to keep a vCard's
    X- properties); if it raises, the record is rejected like any other error.

    ``warnings`` are parts of a record that could not be read although the rest was (a vCard photo with
    bad base64, a phone number kept only as typed...): the record is still applied and the importer
    reports each warning with the record's position.

    Besides the API's fields, ``data`` may hold ``organization`` (a name: the organization of that
    name is found, or created, and the person linked to it) and ``notes`` (a text or a list of texts,
    each added as an internal note), and ``number`` to match an existing contact. ``sources`` maps a
    field path (``emails[0]``, ``custom.vat``) to where it came from (a CSV column) so rejection
    reasons name it.
    """

    position: int | str
    data: dict[str, Any] | None = None
    error: str | None = None
    after_save: Callable[[Any], None] | None = None
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Rejection:
    position: int | str
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    #: Parts of applied records that could not be read (see :attr:`ImportRecord.warnings`).
    warnings: list[Rejection] = field(default_factory=list)
    batch: str | None = None
    dry_run: bool = False
    #: Every rejected record, also those beyond the ones listed in ``rejected`` (the list is capped).
    rejected_total: int = 0
    #: Organizations created to link imported people to (not counted in ``created``).
    organizations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "rejected": [{"position": r.position, "reason": r.reason} for r in self.rejected],
            "warnings": [{"position": w.position, "reason": w.reason} for w in self.warnings],
            "batch": self.batch,
            "dry_run": self.dry_run,
            "rejected_total": self.rejected_total,
            "organizations": self.organizations,
        }
