from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crmcore.extensions import db
from crmcore.models.base import JSONType, UTCDateTime, utcnow
from crmcore.models.users import Team, User


#: Binary ("C") collation on PostgreSQL for columns searched by prefix, so a prefix is one contiguous
#: range of the index whatever the database's collation (as on SQLite).
def _prefix_searched(length: int) -> String:
    return String(length).with_variant(String(length, collation="C"), "postgresql")


contact_owners = Table(
    "contact_owners",
    db.metadata,
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
)

contact_tags = Table(
    "contact_tags",
    db.metadata,
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Contact(db.Model):
    """A person or an organization. Written only through :mod:`crmcore.services.contacts`."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    salutation: Mapped[str | None] = mapped_column(String(40))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(300))
    display_name: Mapped[str] = mapped_column(String(400), default="")
    #: Normalised (lowercase, no accents) sort key: "last first" for people, the name for organizations.
    sort_key: Mapped[str] = mapped_column(String(400), default="")
    job_title: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))
    birthday: Mapped[date | None] = mapped_column(Date)
    origin: Mapped[str | None] = mapped_column(String(60))
    description: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(String(500))
    social: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    language: Mapped[str | None] = mapped_column(String(8))
    country: Mapped[str | None] = mapped_column(String(2))
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), default="prospect", index=True)
    is_supplier: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Set when a user forced the status; automatic changes (``set_status(..., automatic=True)``) then leave it alone.
    status_forced: Mapped[bool] = mapped_column(Boolean, default=False)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    role: Mapped[str | None] = mapped_column(String(60))
    reports_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    custom: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    visibility: Mapped[str] = mapped_column(String(16), default="public_read")
    do_not_email: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_owners: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    import_batch: Mapped[str | None] = mapped_column(String(40), index=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))

    # The database refuses an UPDATE from a stale version even if two requests race.
    __mapper_args__ = {"version_id_col": version}
    # Keyset pagination: every sort order ends with the id so pages are stable.
    __table_args__ = (
        Index("ix_contacts_sort_key_id", "sort_key", "id"),
        Index("ix_contacts_created_at_id", "created_at", "id"),
        Index("ix_contacts_updated_at_id", "updated_at", "id"),
    )

    emails: Mapped[list[ContactEmail]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactEmail.position"
    )
    phones: Mapped[list[ContactPhone]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactPhone.position"
    )
    addresses: Mapped[list[ContactAddress]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactAddress.position"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=contact_tags, order_by="Tag.name")
    owners: Mapped[list[User]] = relationship(secondary=contact_owners, order_by="User.id")
    team: Mapped[Team | None] = relationship()
    organization: Mapped[Contact | None] = relationship(
        remote_side=[id], foreign_keys=[organization_id], back_populates="members"
    )
    members: Mapped[list[Contact]] = relationship(
        foreign_keys=[organization_id], back_populates="organization", viewonly=True
    )
    reports_to: Mapped[Contact | None] = relationship(remote_side=[id], foreign_keys=[reports_to_id])

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def primary_email(self) -> ContactEmail | None:
        for email in self.emails:
            if email.primary:
                return email
        return self.emails[0] if self.emails else None

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.number} {self.display_name!r}>"


class ContactEmail(db.Model):
    __tablename__ = "contact_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254))
    #: Lowercased address, for duplicate detection and exact lookups.
    address_key: Mapped[str] = mapped_column(_prefix_searched(254), index=True)
    domain: Mapped[str] = mapped_column(_prefix_searched(254), index=True)
    label: Mapped[str] = mapped_column(String(20), default="work")
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    accepts_email: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)

    contact: Mapped[Contact] = relationship(back_populates="emails")


class ContactPhone(db.Model):
    __tablename__ = "contact_phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(60))
    e164: Mapped[str] = mapped_column(_prefix_searched(20), index=True)
    #: The national significant number's digits ("612345678" for +33 6 12 34 56 78), for search.
    national: Mapped[str] = mapped_column(_prefix_searched(20), index=True, default="")
    type: Mapped[str] = mapped_column(String(40), default="mobile")
    sms: Mapped[bool] = mapped_column(Boolean, default=False)
    whatsapp: Mapped[bool] = mapped_column(Boolean, default=False)
    viber: Mapped[bool] = mapped_column(Boolean, default=False)
    calls: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)

    contact: Mapped[Contact] = relationship(back_populates="phones")


class ContactAddress(db.Model):
    __tablename__ = "contact_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="main")
    street: Mapped[str | None] = mapped_column(String(300))
    street2: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(20), index=True)
    city: Mapped[str | None] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(120))
    country: Mapped[str | None] = mapped_column(String(2))
    position: Mapped[int] = mapped_column(Integer, default=0)

    contact: Mapped[Contact] = relationship(back_populates="addresses")


class ContactPhoto(db.Model):
    __tablename__ = "contact_photos"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(40))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Tag(db.Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    #: Normalised name: "Client VIP" and "client vip" are one tag.
    key: Mapped[str] = mapped_column(String(80), unique=True)


class SearchToken(db.Model):
    """Normalised name words of a contact (its names and its organization's) for prefix search.

    A B-tree range scan on ``token`` serves "starts with", on SQLite and PostgreSQL alike. Emails,
    phones and numbers are searched on their own indexed columns (no token rows to write for them).
    """

    __tablename__ = "contact_search_tokens"

    token: Mapped[str] = mapped_column(_prefix_searched(254), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_contact_search_tokens_contact_id", "contact_id"),)


class NumberSequence(db.Model):
    """Counters behind generated numbers (``C-000001``): incremented, never reused."""

    __tablename__ = "number_sequences"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
