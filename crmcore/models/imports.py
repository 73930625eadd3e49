from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.extensions import db
from crmcore.models.base import JSONType, UTCDateTime, utcnow


class ImportBatch(db.Model):
    """One import run (not a dry run): who, when, which file, what it did; it can be reverted once.

    ``id`` is the batch label stored in ``Contact.import_batch``. Written only by
    :mod:`crmcore.interchange.importer`.
    """

    __tablename__ = "import_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    file_name: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(8), default="csv")
    mode: Mapped[str] = mapped_column(String(20), default="create")
    match: Mapped[str | None] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(40), default="import")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    reverted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reverted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"<ImportBatch {self.id} {self.file_name!r}>"


class ImportBatchItem(db.Model):
    """A contact an import created or updated: what revert undoes.

    For an update, ``revision`` is the contact version the import produced (its history entries carry
    it), ``previous_batch`` the contact's batch before, ``note_ids`` the notes the import added.
    """

    __tablename__ = "import_batch_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    #: created | updated
    action: Mapped[str] = mapped_column(String(8))
    revision: Mapped[int | None] = mapped_column(Integer)
    previous_batch: Mapped[str | None] = mapped_column(String(40))
    note_ids: Mapped[Any] = mapped_column(JSONType, nullable=True)

    __table_args__ = (Index("ix_import_batch_items_batch_id_id", "batch_id", "id"),)
