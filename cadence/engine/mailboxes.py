"""Mailboxes: stored connection settings (secret encrypted) and how to connect with them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from cadence.engine.scheduling import Pacing, Window, parse_holidays, zone
from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint, Security
from cadence.store.models import Mailbox, MailboxStatus
from cadence.store.repositories import MailboxRepository
from cadence.store.secrets import SecretBox


@dataclass(frozen=True)
class MailboxSpec:
    address: str
    username: str
    password: str = field(repr=False)
    imap: Endpoint
    smtp: Endpoint
    display_name: str | None = None
    ca_file: str | None = None
    daily_cap: int = 50
    min_gap_seconds: int = 90
    jitter_seconds: int = 60
    timezone: str = "UTC"
    work_days: str = "mon,tue,wed,thu,fri"
    work_from: str = "09:00"
    work_to: str = "17:00"
    holidays: tuple[str, ...] = ()


@dataclass(frozen=True)
class MailboxConnection:
    """Everything the protocol layer needs to open this mailbox's sessions."""

    address: str
    imap: Endpoint
    smtp: Endpoint
    options: ConnectOptions
    credentials: Credentials


async def save_mailbox(
    session: AsyncSession, spec: MailboxSpec, box: SecretBox
) -> tuple[Mailbox, bool]:
    """Add the mailbox, or update it (a re-added mailbox is active again)."""
    zone(spec.timezone)
    Window.parse(spec.work_days, spec.work_from, spec.work_to)
    parse_holidays(spec.holidays)
    repo = MailboxRepository(session)
    mailbox = await repo.by_address(spec.address)
    created = mailbox is None
    if mailbox is None:
        mailbox = Mailbox(address=spec.address.strip().lower())
    mailbox.username = spec.username
    mailbox.display_name = spec.display_name
    mailbox.secret = box.encrypt(spec.password)
    mailbox.imap_host, mailbox.imap_port = spec.imap.host, spec.imap.port
    mailbox.imap_security = spec.imap.security.value
    mailbox.smtp_host, mailbox.smtp_port = spec.smtp.host, spec.smtp.port
    mailbox.smtp_security = spec.smtp.security.value
    mailbox.ca_file = spec.ca_file
    mailbox.daily_cap = spec.daily_cap
    mailbox.min_gap_seconds = spec.min_gap_seconds
    mailbox.jitter_seconds = spec.jitter_seconds
    mailbox.timezone = spec.timezone
    mailbox.work_days = spec.work_days
    mailbox.work_from = spec.work_from
    mailbox.work_to = spec.work_to
    mailbox.holidays = list(spec.holidays)
    mailbox.status = MailboxStatus.ACTIVE
    mailbox.status_reason = None
    if created:
        await repo.add(mailbox)
    await session.flush()
    return mailbox, created


def connection_for(mailbox: Mailbox, box: SecretBox, timeout: float = 20.0) -> MailboxConnection:
    return MailboxConnection(
        address=mailbox.address,
        imap=Endpoint(mailbox.imap_host, mailbox.imap_port, Security(mailbox.imap_security)),
        smtp=Endpoint(mailbox.smtp_host, mailbox.smtp_port, Security(mailbox.smtp_security)),
        options=ConnectOptions(ca_file=mailbox.ca_file, timeout=timeout),
        credentials=Credentials(mailbox.username, box.decrypt(mailbox.secret).value),
    )


def pacing_for(mailbox: Mailbox) -> Pacing:
    from datetime import timedelta

    return Pacing(
        daily_cap=mailbox.daily_cap,
        min_gap=timedelta(seconds=mailbox.min_gap_seconds),
        jitter=timedelta(seconds=mailbox.jitter_seconds),
        tz=zone(mailbox.timezone),
        seed=mailbox.address,
    )


def working_hours(mailbox: Mailbox) -> Window:
    return Window.parse(mailbox.work_days, mailbox.work_from, mailbox.work_to)
