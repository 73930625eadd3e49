"""The message log and message templates. Written only through :mod:`crmcore.services.messaging`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.extensions import db
from crmcore.models.base import UTCDateTime, utcnow


class Message(db.Model):
    """One message sent to or received from a contact, on one channel (email, sms, whatsapp...).

    ``status``: queued (waiting for the worker, or accepted by a provider that queues it), sent,
    delivered, failed, undelivered (outbound); received (inbound). ``handed_at`` is set once the
    provider accepted the message: from then on no worker sends it again.
    """

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None for an inbound message from an unknown sender.
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # out | in
    channel: Mapped[str] = mapped_column(String(63))
    #: An email address or an E.164 phone number.
    to_address: Mapped[str] = mapped_column(String(254))
    from_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    template_key: Mapped[str | None] = mapped_column(String(63))
    language: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(128), index=True)
    #: Stable for the life of the message; channels pass it to providers that deduplicate.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The worker holding the message (set atomically by the claim) and until when.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Messages of one mass sending share it.
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    handed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_messages_contact_id_id", "contact_id", "id"),)

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.direction} {self.channel} {self.status}>"


class MessageTemplate(db.Model):
    """A reusable text with placeholders (``{{ contact.first_name }}``), per channel and language."""

    __tablename__ = "message_templates"
    __table_args__ = (
        UniqueConstraint("key", "channel", "language", name="uq_message_templates_key_channel_language"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(63), index=True)
    channel: Mapped[str] = mapped_column(String(63))
    language: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
