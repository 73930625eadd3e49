from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.extensions import db
from crmcore.models.base import JSONType, UTCDateTime, utcnow


class Merge(db.Model):
    """One merge of contacts into an original, with what it changed so it can be undone exactly.

    Written only by :mod:`crmcore.services.merge`. ``snapshot`` holds the original's state before
    and after, what was added to it, the rows moved to it (notes, warnings, history, members...)
    and the merged contacts as they were. Plugins keep their own records keyed by the merge id.
    """

    __tablename__ = "merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    original_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    #: The contacts merged into the original, in the order given.
    merged_ids: Mapped[list[int]] = mapped_column(JSONType)
    #: The caller's choices: ``{field: contact id whose value wins}``.
    fields: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(40), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"<Merge {self.id} {self.merged_ids} -> {self.original_id}>"
