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
    """

    position: int | str
    data: dict[str, Any] | None = None
    error: str | None = None
    after_save: Callable[[Any], None] | None = None


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
    batch: str | None = None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "rejected": [{"position": r.position, "reason": r.reason} for r in self.rejected],
            "batch": self.batch,
            "dry_run": self.dry_run,
        }
