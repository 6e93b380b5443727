"""Repositories: every query Cadence runs lives here.  They add and flush, never commit: the
caller (a command, the API, the worker) owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from cadence.store.account_models import ApiToken, Team, User, WebSession
from cadence.store.models import (
    Activity,
    Cadence,
    Enrollment,
    EnrollmentState,
    Mailbox,
    MailboxStatus,
    OutboundMessage,
    OutboundState,
    Prospect,
    Step,
)

_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])


def _lock(stmt: _S, session: AsyncSession) -> _S:
    """Row locks where the database has them: several workers can share one PostgreSQL, each
    taking rows the others have not locked.  SQLite serialises writers anyway."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True)
    return stmt


class MailboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_address(self, address: str) -> Mailbox | None:
        return await self.session.scalar(
            select(Mailbox).where(func.lower(Mailbox.address) == address.strip().lower())
        )

    async def get(self, mailbox_id: int) -> Mailbox | None:
        return await self.session.get(Mailbox, mailbox_id)

    async def add(self, mailbox: Mailbox) -> Mailbox:
        self.session.add(mailbox)
        await self.session.flush()
        return mailbox

    async def all(self) -> Sequence[Mailbox]:
        return (await self.session.scalars(select(Mailbox).order_by(Mailbox.id))).all()

    async def active_ids(self) -> list[int]:
        rows = await self.session.scalars(
            select(Mailbox.id).where(Mailbox.status == MailboxStatus.ACTIVE).order_by(Mailbox.id)
        )
        return list(rows)

    async def schedules(self) -> dict[int, MailboxSchedule]:
        rows = await self.session.execute(
            select(
                Mailbox.id,
                Mailbox.timezone,
                Mailbox.work_days,
                Mailbox.work_from,
                Mailbox.work_to,
                Mailbox.holidays,
            )
        )
        return {r[0]: MailboxSchedule(*r[1:]) for r in rows.all()}

    async def lock(self, mailbox_id: int) -> Mailbox | None:
        """The mailbox row, locked for this transaction (skipped if another worker has it)."""
        stmt = _lock(select(Mailbox).where(Mailbox.id == mailbox_id), self.session)
        return await self.session.scalar(stmt)

    async def sends_since(self, mailbox_id: int, since: datetime) -> int:
        """Messages counted against the daily cap: sent, being sent, or of unknown outcome."""
        stmt = select(func.count(OutboundMessage.id)).where(
            OutboundMessage.mailbox_id == mailbox_id,
            OutboundMessage.state.in_(
                [OutboundState.SENT, OutboundState.SENDING, OutboundState.UNKNOWN]
            ),
            func.coalesce(OutboundMessage.sent_at, OutboundMessage.updated_at) >= since,
        )
        return int(await self.session.scalar(stmt) or 0)


class CadenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_name(self, name: str) -> Cadence | None:
        return await self.session.scalar(
            select(Cadence).where(Cadence.name == name).options(selectinload(Cadence.steps))
        )

    async def get(self, cadence_id: int) -> Cadence | None:
        return await self.session.scalar(
            select(Cadence).where(Cadence.id == cadence_id).options(selectinload(Cadence.steps))
        )

    async def add(self, cadence: Cadence) -> Cadence:
        self.session.add(cadence)
        await self.session.flush()
        return cadence

    async def steps(self, cadence_id: int) -> list[Step]:
        rows = await self.session.scalars(
            select(Step).where(Step.cadence_id == cadence_id).order_by(Step.position)
        )
        return list(rows)


class ProspectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_email(self, email: str) -> Prospect | None:
        return await self.session.scalar(
            select(Prospect).where(Prospect.email == email.strip().lower())
        )

    async def get(self, prospect_id: int) -> Prospect | None:
        return await self.session.get(Prospect, prospect_id)

    async def by_emails(self, emails: Sequence[str]) -> dict[str, Prospect]:
        out: dict[str, Prospect] = {}
        keys = [e.strip().lower() for e in emails]
        for i in range(0, len(keys), 500):
            rows = await self.session.scalars(
                select(Prospect).where(Prospect.email.in_(keys[i : i + 500]))
            )
            out.update({p.email: p for p in rows})
        return out

    async def add_all(self, prospects: Sequence[Prospect]) -> None:
        self.session.add_all(prospects)
        await self.session.flush()

    async def all(self) -> list[Prospect]:
        return list(await self.session.scalars(select(Prospect).order_by(Prospect.id)))


@dataclass(frozen=True)
class EnrollmentRow:
    prospect: str
    cadence: str
    mailbox: str
    state: str
    step: int
    next_due_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class DueRow:
    """What the scheduler needs to decide about one due enrollment, without loading objects
    (the mailbox's settings come once per mailbox, from ``MailboxRepository.schedules``)."""

    enrollment_id: int
    mailbox_id: int
    prospect_tz: str | None
    window_days: str | None
    window_from: str | None
    window_to: str | None


@dataclass(frozen=True)
class MailboxSchedule:
    timezone: str
    work_days: str
    work_from: str
    work_to: str
    holidays: list[str]


class EnrollmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, enrollment: Enrollment) -> Enrollment:
        self.session.add(enrollment)
        await self.session.flush()
        return enrollment

    async def get(self, enrollment_id: int) -> Enrollment | None:
        return await self.session.get(Enrollment, enrollment_id)

    async def existing_prospect_ids(self, cadence_id: int) -> set[int]:
        rows = await self.session.scalars(
            select(Enrollment.prospect_id).where(Enrollment.cadence_id == cadence_id)
        )
        return set(rows)

    async def listing(
        self, *, cadence: str | None = None, state: str | None = None
    ) -> list[EnrollmentRow]:
        stmt = (
            select(
                Prospect.email,
                Cadence.name,
                Mailbox.address,
                Enrollment.state,
                Enrollment.current_step,
                Enrollment.next_due_at,
                Enrollment.reason,
            )
            .join(Prospect, Prospect.id == Enrollment.prospect_id)
            .join(Cadence, Cadence.id == Enrollment.cadence_id)
            .join(Mailbox, Mailbox.id == Enrollment.mailbox_id)
            .order_by(Enrollment.id)
        )
        if cadence:
            stmt = stmt.where(Cadence.name == cadence)
        if state:
            stmt = stmt.where(Enrollment.state == state)
        return [EnrollmentRow(*row) for row in (await self.session.execute(stmt)).all()]

    def _due_stmt(self, now: datetime) -> Select[*tuple[Any, ...]]:
        return (
            select(
                Enrollment.id,
                Enrollment.mailbox_id,
                Prospect.timezone,
                Step.window_days,
                Step.window_from,
                Step.window_to,
            )
            .join(Prospect, Prospect.id == Enrollment.prospect_id)
            .join(
                Step,
                and_(
                    Step.cadence_id == Enrollment.cadence_id,
                    Step.position == Enrollment.current_step,
                ),
                isouter=True,
            )
            .where(
                Enrollment.state == EnrollmentState.ACTIVE,
                Enrollment.next_due_at <= now,
                Enrollment.mailbox_id.in_(
                    select(Mailbox.id).where(Mailbox.status == MailboxStatus.ACTIVE)
                ),
            )
            .order_by(Enrollment.next_due_at, Enrollment.id)
        )

    async def due(self, now: datetime, limit: int | None = None) -> list[DueRow]:
        stmt = self._due_stmt(now)
        if limit:
            stmt = stmt.limit(limit)
        result = await self.session.execute(stmt)
        return [DueRow(*row) for row in result.all()]

    async def reschedule_many(self, moves: Sequence[tuple[int, datetime]], now: datetime) -> None:
        """Move enrollments whose window is closed to the moment it opens.  Many share an
        opening instant (one per zone and window), so one UPDATE per instant."""
        by_time: dict[datetime, list[int]] = {}
        for enrollment_id, at in moves:
            by_time.setdefault(at, []).append(enrollment_id)
        for at, ids in by_time.items():
            for i in range(0, len(ids), 5000):
                await self.session.execute(
                    update(Enrollment)
                    .where(Enrollment.id.in_(ids[i : i + 5000]))
                    .values(next_due_at=at, updated_at=now)
                    .execution_options(synchronize_session=False)
                )

    async def claim(self, enrollment_id: int, now: datetime) -> Enrollment | None:
        """Lock one enrollment that is still due (another worker may have taken it), with
        its prospect and cadence; only the enrollment row is locked."""
        stmt = (
            select(Enrollment)
            .where(
                Enrollment.id == enrollment_id,
                Enrollment.state == EnrollmentState.ACTIVE,
                Enrollment.next_due_at <= now,
            )
            .options(
                joinedload(Enrollment.prospect),
                joinedload(Enrollment.cadence).selectinload(Cadence.steps),
            )
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=Enrollment)
        return await self.session.scalar(stmt)

    async def wake_paused(self, now: datetime) -> int:
        """Enrollments paused until a date (an out-of-office) become active again then."""
        result = await self.session.execute(
            update(Enrollment)
            .where(
                Enrollment.state == EnrollmentState.PAUSED,
                Enrollment.paused_until.is_not(None),
                Enrollment.paused_until <= now,
            )
            .values(
                state=EnrollmentState.ACTIVE,
                next_due_at=Enrollment.paused_until,
                paused_until=None,
                reason="resumed after the pause",
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def claim_any(self, enrollment_id: int) -> Enrollment | None:
        """Lock one enrollment whatever its state (to record an outcome for it)."""
        stmt = select(Enrollment).where(Enrollment.id == enrollment_id)
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def for_cadence_and_prospects(
        self, cadence_id: int, prospect_ids: Sequence[int]
    ) -> list[Enrollment]:
        rows = await self.session.scalars(
            select(Enrollment).where(
                Enrollment.cadence_id == cadence_id, Enrollment.prospect_id.in_(prospect_ids)
            )
        )
        return list(rows)


class OutboundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, message: OutboundMessage) -> OutboundMessage:
        self.session.add(message)
        await self.session.flush()
        return message

    async def get(self, outbound_id: int) -> OutboundMessage | None:
        return await self.session.get(OutboundMessage, outbound_id)

    async def for_step(self, enrollment_id: int, position: int) -> OutboundMessage | None:
        return await self.session.scalar(
            select(OutboundMessage).where(
                OutboundMessage.enrollment_id == enrollment_id,
                OutboundMessage.step_position == position,
            )
        )

    async def thread_of(self, enrollment_id: int) -> list[OutboundMessage]:
        """The messages already sent to this enrollment, oldest first."""
        rows = await self.session.scalars(
            select(OutboundMessage)
            .where(
                OutboundMessage.enrollment_id == enrollment_id,
                OutboundMessage.state == OutboundState.SENT,
            )
            .order_by(OutboundMessage.step_position)
        )
        return list(rows)

    async def expired_sending(self, now: datetime, mailbox_id: int | None = None) -> list[int]:
        """SENDING rows whose worker's lease ran out: the worker died mid-transaction."""
        stmt = select(OutboundMessage.id).where(
            OutboundMessage.state == OutboundState.SENDING,
            or_(OutboundMessage.lease_until.is_(None), OutboundMessage.lease_until < now),
        )
        if mailbox_id is not None:
            stmt = stmt.where(OutboundMessage.mailbox_id == mailbox_id)
        return list(await self.session.scalars(stmt.order_by(OutboundMessage.id)))

    async def lock(self, outbound_id: int) -> OutboundMessage | None:
        stmt = _lock(select(OutboundMessage).where(OutboundMessage.id == outbound_id), self.session)
        return await self.session.scalar(stmt)

    async def by_message_ids(self, message_ids: Sequence[str]) -> list[OutboundMessage]:
        """Outbound messages known by our Message-ID or the one the provider gave them."""
        ids = [m.strip() for m in message_ids if m and m.strip()]
        if not ids:
            return []
        rows = await self.session.scalars(
            select(OutboundMessage).where(
                or_(
                    OutboundMessage.message_id.in_(ids),
                    OutboundMessage.provider_message_id.in_(ids),
                )
            )
        )
        return list(rows)

    async def missing_sent_copy(self, mailbox_id: int, limit: int = 50) -> list[int]:
        rows = await self.session.scalars(
            select(OutboundMessage.id)
            .where(
                OutboundMessage.mailbox_id == mailbox_id,
                OutboundMessage.state == OutboundState.SENT,
                OutboundMessage.sent_copy_by.is_(None),
            )
            .order_by(OutboundMessage.id)
            .limit(limit)
        )
        return list(rows)

    async def by_mailbox(self, mailbox_id: int) -> list[OutboundMessage]:
        rows = await self.session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.mailbox_id == mailbox_id)
            .order_by(OutboundMessage.id)
        )
        return list(rows)


class ActivityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def log(
        self,
        kind: str,
        message: str,
        *,
        at: datetime,
        mailbox_id: int | None = None,
        enrollment_id: int | None = None,
        prospect_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            Activity(
                at=at,
                kind=kind,
                message=message,
                mailbox_id=mailbox_id,
                enrollment_id=enrollment_id,
                prospect_id=prospect_id,
                data=dict(data or {}),
            )
        )

    async def recent(self, limit: int = 100) -> list[Activity]:
        rows = await self.session.scalars(
            select(Activity).order_by(Activity.id.desc()).limit(limit)
        )
        return list(rows)


class AccountRepository:
    """Users, teams, API tokens and browser sessions (cadence.store.account_models)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_users(self) -> int:
        return int(await self.session.scalar(select(func.count(User.id))) or 0)

    async def user(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def user_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def users(self) -> list[User]:
        return list(await self.session.scalars(select(User).order_by(User.id)))

    async def team_by_name(self, name: str) -> Team | None:
        return await self.session.scalar(select(Team).where(Team.name == name))

    async def token(self, token_id: int) -> ApiToken | None:
        return await self.session.get(ApiToken, token_id)

    async def token_by_hash(self, digest: str) -> ApiToken | None:
        return await self.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))

    async def tokens_of(self, user_id: int) -> list[ApiToken]:
        rows = await self.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        )
        return list(rows)

    async def session_by_hash(self, digest: str) -> WebSession | None:
        return await self.session.scalar(select(WebSession).where(WebSession.token_hash == digest))
