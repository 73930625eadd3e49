from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crmcore.extensions import db
from crmcore.models.base import JSONType, UTCDateTime, utcnow
from crmcore.models.users import User


class Note(db.Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    #: ``internal`` stays inside the company; ``customer`` notes are printed on generated documents.
    kind: Mapped[str] = mapped_column(String(12), default="internal")
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    author: Mapped[User | None] = relationship()


class ContactWarning(db.Model):
    __tablename__ = "contact_warnings"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    #: ``info`` is shown; ``blocking`` also makes :func:`ensure_not_blocked` refuse.
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HistoryEntry(db.Model):
    """One audited change: who, when, from where, which field, old and new value."""

    __tablename__ = "contact_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    #: create | update | delete | restore | merge | unmerge | consent | note | warning | status
    action: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(120))
    old: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new: Mapped[Any] = mapped_column(JSONType, nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: ui | api | import | web_form | inbound | cli | system | plugin name
    source: Mapped[str] = mapped_column(String(40), default="system")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    #: The contact version this change produced; entries of one save share it.
    revision: Mapped[int | None] = mapped_column(Integer)

    user: Mapped[User | None] = relationship()
