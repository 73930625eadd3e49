from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.extensions import db
from crmcore.models.base import UTCDateTime, utcnow


class DuplicateDismissal(db.Model):
    """A pair of contacts a user said are not duplicates ("not a duplicate"): never proposed again.

    Written only by :mod:`crmcore.services.duplicates`. The pair is stored once, canonically: the lower
    contact id first (the primary key keeps it unique). A contact deleted for good takes its markers
    with it; a contact merged away (soft-deleted) keeps them, so undoing the merge finds them again.
    """

    __tablename__ = "duplicate_dismissals"

    contact_a_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    contact_b_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False, index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    __table_args__ = (CheckConstraint("contact_a_id < contact_b_id", name="ordered_pair"),)

    def __repr__(self) -> str:
        return f"<DuplicateDismissal {self.contact_a_id}-{self.contact_b_id}>"
