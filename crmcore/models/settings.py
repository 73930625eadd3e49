from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.extensions import db
from crmcore.models.base import JSONType, UTCDateTime, utcnow

LOOKUP_LISTS = ("salutation", "origin", "role", "phone_type")


class LookupValue(db.Model):
    """An entry of a configurable list: salutations, origins (lead sources), roles, phone types."""

    __tablename__ = "lookup_values"
    __table_args__ = (UniqueConstraint("list", "key", name="uq_lookup_values_list_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list: Mapped[str] = mapped_column(String(20), index=True)
    key: Mapped[str] = mapped_column(String(60))
    label_en: Mapped[str] = mapped_column(String(120))
    label_fr: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: Shipped with crmcore; can be relabelled but not deleted.
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class CustomFieldDefinition(db.Model):
    """A custom field an admin defined at runtime (plugins define theirs through the hook)."""

    __tablename__ = "custom_field_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(63), unique=True)
    label_en: Mapped[str] = mapped_column(String(120))
    label_fr: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(20))
    kinds: Mapped[list[str]] = mapped_column(JSONType, default=lambda: ["person", "organization"])
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    choices: Mapped[list[str]] = mapped_column(JSONType, default=list)
    help: Mapped[str | None] = mapped_column(Text)
    max_length: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PluginIncident(db.Model):
    """A plugin hook that raised at run time, kept so ``crm plugins`` and the admin page can show it."""

    __tablename__ = "plugin_incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin: Mapped[str] = mapped_column(String(80), index=True)
    hook: Mapped[str] = mapped_column(String(80))
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
