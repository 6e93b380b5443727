"""SQLAlchemy 2 models: what Cadence stores.

Times are stored in UTC (``UTCDateTime``), whatever the database: SQLite keeps naive UTC, so
reading it back attaches UTC again and callers always see aware datetimes.  Local wall-clock
values (working hours, send windows) are stored as ``HH:MM`` strings with an IANA zone name.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from cadence.mail.mime import conversation_root, thread_guid


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no time zones: keep naive UTC so string comparisons order correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class MailboxStatus(enum.StrEnum):
    ACTIVE = "active"
    NEEDS_ATTENTION = "needs_attention"
    PAUSED = "paused"  # paused by its owner: sends nothing until resumed


class EnrollmentState(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    FINISHED = "finished"
    REPLIED = "replied"
    BOUNCED = "bounced"
    OPTED_OUT = "opted_out"
    FAILED = "failed"
    STOPPED = "stopped"  # stopped by a person (the API or the dashboard)


class StepType(enum.StrEnum):
    EMAIL = "email"  # sent automatically
    MANUAL_EMAIL = "manual_email"  # a task for the rep: write and send it yourself
    CALL = "call"
    TASK = "task"


class OutboundState(enum.StrEnum):
    SENDING = "sending"  # stored before the SMTP transaction: the outcome may be unknown
    SENT = "sent"  # the server answered 250 and we committed it
    RETRY = "retry"  # a 4xx reply or a connection failure: try again at next_attempt_at
    BOUNCED = "bounced"  # a 5xx reply
    FAILED = "failed"
    UNKNOWN = "unknown"  # recovery could not tell whether the server accepted it: never re-sent


class Mailbox(Base):
    __tablename__ = "mailbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    username: Mapped[str] = mapped_column(String(320))
    # The password (or token), encrypted with cadence.store.secrets; never logged.
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    imap_host: Mapped[str] = mapped_column(String(255))
    imap_port: Mapped[int] = mapped_column(Integer, default=993)
    imap_security: Mapped[str] = mapped_column(String(16), default="tls")
    smtp_host: Mapped[str] = mapped_column(String(255))
    smtp_port: Mapped[int] = mapped_column(Integer, default=587)
    smtp_security: Mapped[str] = mapped_column(String(16), default="starttls")
    ca_file: Mapped[str | None] = mapped_column(String(1024))
    # Sending limits.
    daily_cap: Mapped[int] = mapped_column(Integer, default=50)
    min_gap_seconds: Mapped[int] = mapped_column(Integer, default=90)
    jitter_seconds: Mapped[int] = mapped_column(Integer, default=60)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    work_days: Mapped[str] = mapped_column(String(40), default="mon,tue,wed,thu,fri")
    work_from: Mapped[str] = mapped_column(String(5), default="09:00")
    work_to: Mapped[str] = mapped_column(String(5), default="17:00")
    holidays: Mapped[list[str]] = mapped_column(default=list)  # ISO dates
    # Learned: does the server file a Sent copy itself (Gmail, Microsoft 365)?
    server_files_sent: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20), default=MailboxStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_send_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Reply tracking: folders watched besides INBOX and Junk, and whether mail from an enrolled
    # prospect that names none of our messages counts as their reply ("off", "address", or
    # "domain": anyone at the prospect's domain).
    watch_folders: Mapped[list[str]] = mapped_column(default=list)
    reply_fallback: Mapped[str] = mapped_column(String(10), default="address")
    # Ownership (issue 6): None for rows made by the CLI, which only admins see in the API.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))


class Cadence(Base):
    __tablename__ = "cadence"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Ownership (issue 6): None for rows made by the CLI, which only admins see in the API.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    # A reply to this cadence also stops the prospect's other cadences.
    stop_others_on_reply: Mapped[bool] = mapped_column(Boolean, default=False)

    steps: Mapped[list[Step]] = relationship(
        back_populates="cadence", order_by="Step.position", cascade="all, delete-orphan"
    )


class Step(Base):
    __tablename__ = "step"
    __table_args__ = (UniqueConstraint("cadence_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cadence_id: Mapped[int] = mapped_column(ForeignKey("cadence.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0-based
    type: Mapped[str] = mapped_column(String(20), default=StepType.EMAIL)
    delay_business_days: Mapped[int] = mapped_column(Integer, default=0)
    delay_hours: Mapped[int] = mapped_column(Integer, default=0)
    # Send window: days "mon,tue,...", local "HH:MM" bounds ("24:00" is the end of the day).
    # None: the mailbox's working hours.
    window_days: Mapped[str | None] = mapped_column(String(40))
    window_from: Mapped[str | None] = mapped_column(String(5))
    window_to: Mapped[str | None] = mapped_column(String(5))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    reply_in_thread: Mapped[bool] = mapped_column(Boolean, default=False)

    cadence: Mapped[Cadence] = relationship(back_populates="steps")


class Prospect(Base):
    __tablename__ = "prospect"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    # A hard bounce: the address does not exist or refuses mail; never mailed again.
    undeliverable: Mapped[bool] = mapped_column(Boolean, default=False)
    undeliverable_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Ownership (issue 6): None for rows made by the CLI, which only admins see in the API.
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))


class Enrollment(Base):
    __tablename__ = "enrollment"
    __table_args__ = (
        UniqueConstraint("prospect_id", "cadence_id"),
        Index("ix_enrollment_due", "state", "next_due_at"),
        Index("ix_enrollment_mailbox_due", "mailbox_id", "state", "next_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prospect_id: Mapped[int] = mapped_column(ForeignKey("prospect.id", ondelete="CASCADE"))
    cadence_id: Mapped[int] = mapped_column(ForeignKey("cadence.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20), default=EnrollmentState.ACTIVE)
    current_step: Mapped[int] = mapped_column(Integer, default=0)  # position of the next step
    next_due_at: Mapped[datetime | None]
    paused_until: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    prospect: Mapped[Prospect] = relationship()
    cadence: Mapped[Cadence] = relationship()
    mailbox: Mapped[Mailbox] = relationship()


def _thread_guid_default(context: ExecutionContext) -> str | None:
    """Outlook's conversation GUID of a new outbound row, as ``build_message`` wrote it."""
    params = context.get_current_parameters()  # type: ignore[attr-defined]
    message_id = params.get("message_id")
    if not message_id:
        return None
    return thread_guid(conversation_root(message_id, params.get("references")))


class OutboundMessage(Base):
    """One message of one step of one enrollment: at most one row per (enrollment, step), so
    a step can never be sent twice, whatever a crash or a second worker does."""

    __tablename__ = "outbound_message"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_position"),
        Index("ix_outbound_state", "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment.id", ondelete="SET NULL")
    )
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    step_position: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)  # ours, with <>
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    references: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[str] = mapped_column(String(320))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(20), default=OutboundState.SENDING)
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    smtp_reply: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    # While SENDING: which worker holds it and until when (then recovery may resolve it).
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # IMAP UIDs are unsigned 32-bit (RFC 3501 section 2.3.1.1): BigInteger for PostgreSQL.
    sent_uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    sent_uid: Mapped[int | None] = mapped_column(BigInteger)
    sent_copy_by: Mapped[str | None] = mapped_column(String(20))  # "server" | "cadence"
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Reply tracking: the Thread-Index conversation GUID (hex), and how many times a soft
    # bounce made us send this step again (each time with a new Message-ID).
    thread_guid: Mapped[str | None] = mapped_column(
        String(32), default=_thread_guid_default, index=True
    )
    bounce_retries: Mapped[int] = mapped_column(Integer, default=0)


class Activity(Base):
    __tablename__ = "activity"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailbox.id", ondelete="SET NULL"))
    enrollment_id: Mapped[int | None] = mapped_column(
        ForeignKey("enrollment.id", ondelete="SET NULL")
    )
    prospect_id: Mapped[int | None] = mapped_column(ForeignKey("prospect.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
