"""Reply tracking: what the mailbox watchers store.

* ``FolderCheckpoint`` - per mailbox and folder, the UIDVALIDITY and the last UID handed to the
  reply tracker (so a restart resumes exactly there, and a UIDVALIDITY change is noticed).
* ``InboundMessage`` - every message the tracker processed, unique by (mailbox, Message-ID):
  the dedupe that makes a UIDVALIDITY resync or a crash before the checkpoint harmless.
* ``OutboundAlias`` - Message-IDs an outbound row was known by before (a soft bounce re-sends a
  step with a new Message-ID; a late reply to the old one must still match).
* ``QuarantinedMessage`` - a message the tracker could not process, with its bytes and error.
* ``Webhook`` / ``WebhookDelivery`` - registered receivers, and the outbox of events to post.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cadence.store.models import Base, utcnow


class FolderCheckpoint(Base):
    __tablename__ = "folder_checkpoint"
    __table_args__ = (UniqueConstraint("mailbox_id", "folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(500))
    # RFC 3501 section 2.3.1.1: UIDs and UIDVALIDITY are unsigned 32-bit.
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    synced_at: Mapped[datetime | None]


class InboundKind(enum.StrEnum):
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    FEEDBACK = "feedback"
    DELIVERY_REPORT = "delivery_report"
    OTHER = "other"


class InboundMessage(Base):
    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "message_id"),
        Index("ix_inbound_enrollment", "enrollment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(500))
    uid: Mapped[int] = mapped_column(BigInteger)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    # The message's Message-ID, or a digest of its bytes when it has none.
    message_id: Mapped[str] = mapped_column(String(500))
    from_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    # How it was matched to what we sent: references, thread_index, bounce, address, domain.
    matched_by: Mapped[str | None] = mapped_column(String(20))
    outbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbound_message.id", ondelete="SET NULL")
    )
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment.id", ondelete="SET NULL")
    )
    prospect_id: Mapped[int | None] = mapped_column(ForeignKey("prospect.id", ondelete="SET NULL"))
    # What the tracker did: replied, paused, bounced, retry, opted_out, recorded, ignored.
    action: Mapped[str] = mapped_column(String(20), default="recorded")
    reply_text: Mapped[str | None] = mapped_column(Text)
    return_date: Mapped[date | None] = mapped_column(Date)
    bounce: Mapped[dict[str, Any]] = mapped_column(default=dict)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboundAlias(Base):
    __tablename__ = "outbound_alias"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbound_id: Mapped[int] = mapped_column(
        ForeignKey("outbound_message.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarantinedMessage(Base):
    __tablename__ = "quarantined_message"
    __table_args__ = (Index("ix_quarantine_open", "resolved", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(500))
    uid: Mapped[int] = mapped_column(BigInteger)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[bytes] = mapped_column(LargeBinary)  # at most the watcher's fetch limit
    size: Mapped[int | None] = mapped_column(BigInteger)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    error_code: Mapped[str] = mapped_column(String(80))
    error_message: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retried_at: Mapped[datetime | None]
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_at: Mapped[datetime | None]


class Webhook(Base):
    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # The signing secret, encrypted with cadence.store.secrets; never logged.
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    # Event types delivered ("enrollment.replied", or a prefix such as "enrollment.*");
    # empty: every event.
    events: Mapped[list[str]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up


class WebhookDelivery(Base):
    """The outbox: one row per (event, webhook), posted by the delivery loop, never by the
    transaction that queued it."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(60))
    event: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]  # None: as soon as possible
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
