"""crm-sms tables (all prefixed ``sms_``, in the plugin's own migration history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crmcore.plugin_api import JSONType, UTCDateTime, db, utcnow


class WebhookEvent(db.Model):
    """Every signed request Twilio made to us (status callback or inbound message): an audit trail."""

    __tablename__ = "sms_webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # status | inbound
    message_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str | None] = mapped_column(String(20))
    #: The core message the request is about (crmcore's ``messages.id``).
    message_id: Mapped[int | None] = mapped_column(Integer, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OptOut(db.Model):
    """A STOP (or ARRET...) received from a number, with the contacts whose consent it withdrew."""

    __tablename__ = "sms_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(40), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    keyword: Mapped[str] = mapped_column(String(40))
    contact_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    message_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
