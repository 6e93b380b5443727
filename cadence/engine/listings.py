"""Read models for the API and the dashboard: lists of a user's rows, paginated and filtered.

Visibility lives here once: a user sees the mailboxes, cadences and prospects they own, the
enrollments whose mailbox or cadence they own, and the activity of those; an admin sees all,
including rows made with the CLI (which have no owner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from cadence.engine.accounts import Principal, visible
from cadence.store.models import (
    Activity,
    Cadence,
    Enrollment,
    EnrollmentState,
    Mailbox,
    Prospect,
)


@dataclass(frozen=True)
class Listing:
    items: list[Any]
    total: int


async def _page(
    session: AsyncSession, stmt: Select[*tuple[Any, ...]], limit: int, offset: int
) -> Listing:
    total = int(
        await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    )
    rows = (await session.execute(stmt.limit(limit).offset(offset))).all()
    items = [r[0] if len(r) == 1 else r for r in rows]
    return Listing(items, total)


async def mailboxes(
    session: AsyncSession, who: Principal, *, status: str | None, limit: int, offset: int
) -> Listing:
    stmt = visible(select(Mailbox), Mailbox, who).order_by(Mailbox.id)
    if status:
        stmt = stmt.where(Mailbox.status == status)
    return await _page(session, stmt, limit, offset)


async def mailbox(session: AsyncSession, who: Principal, mailbox_id: int) -> Mailbox | None:
    row = await session.get(Mailbox, mailbox_id)
    return row if row is not None and who.owns(row) else None


async def cadences(
    session: AsyncSession, who: Principal, *, name: str | None, limit: int, offset: int
) -> Listing:
    stmt = (
        visible(select(Cadence), Cadence, who)
        .options(selectinload(Cadence.steps))
        .order_by(Cadence.id)
    )
    if name:
        stmt = stmt.where(Cadence.name.contains(name, autoescape=True))
    return await _page(session, stmt, limit, offset)


async def cadence(session: AsyncSession, who: Principal, cadence_id: int) -> Cadence | None:
    row = await session.scalar(
        select(Cadence).where(Cadence.id == cadence_id).options(selectinload(Cadence.steps))
    )
    return row if row is not None and who.owns(row) else None


async def prospects(
    session: AsyncSession,
    who: Principal,
    *,
    q: str | None,
    company: str | None,
    limit: int,
    offset: int,
) -> Listing:
    stmt = visible(select(Prospect), Prospect, who).order_by(Prospect.id)
    if q:
        like = q.lower()
        stmt = stmt.where(
            or_(
                Prospect.email.contains(like, autoescape=True),
                func.lower(Prospect.first_name).contains(like, autoescape=True),
                func.lower(Prospect.last_name).contains(like, autoescape=True),
                func.lower(Prospect.company).contains(like, autoescape=True),
            )
        )
    if company:
        stmt = stmt.where(Prospect.company == company)
    return await _page(session, stmt, limit, offset)


async def prospect(session: AsyncSession, who: Principal, prospect_id: int) -> Prospect | None:
    row = await session.get(Prospect, prospect_id)
    return row if row is not None and who.owns(row) else None


async def prospects_by_ids(
    session: AsyncSession, who: Principal, ids: Sequence[int]
) -> list[Prospect]:
    out: list[Prospect] = []
    for i in range(0, len(ids), 500):
        stmt = visible(select(Prospect), Prospect, who).where(Prospect.id.in_(ids[i : i + 500]))
        out.extend(await session.scalars(stmt))
    return out


async def owned_prospect_emails(session: AsyncSession, who: Principal) -> list[str]:
    return list(await session.scalars(visible(select(Prospect.email), Prospect, who)))


def _enrollment_visible(stmt: Select[*tuple[Any, ...]], who: Principal) -> Select[*tuple[Any, ...]]:
    if who.is_admin:
        return stmt
    return stmt.where(or_(Mailbox.owner_id == who.user_id, Cadence.owner_id == who.user_id))


def _enrollment_select() -> Select[*tuple[Any, ...]]:
    return (
        select(Enrollment, Prospect.email, Cadence.name, Mailbox.address)
        .join(Prospect, Prospect.id == Enrollment.prospect_id)
        .join(Cadence, Cadence.id == Enrollment.cadence_id)
        .join(Mailbox, Mailbox.id == Enrollment.mailbox_id)
    )


def enrollment_dict(row: Any) -> dict[str, Any]:
    enrollment, email, cadence_name, address = row
    state = enrollment.state
    return {
        "id": enrollment.id,
        "prospect_id": enrollment.prospect_id,
        "prospect": email,
        "cadence_id": enrollment.cadence_id,
        "cadence": cadence_name,
        "mailbox_id": enrollment.mailbox_id,
        "mailbox": address,
        "state": state,
        # 1-based, as `cadence enrollments list` shows it.
        "step": enrollment.current_step
        if state == EnrollmentState.FINISHED
        else enrollment.current_step + 1,
        "next_due_at": enrollment.next_due_at,
        "paused_until": enrollment.paused_until,
        "reason": enrollment.reason,
    }


async def enrollments(
    session: AsyncSession,
    who: Principal,
    *,
    cadence_id: int | None,
    prospect_id: int | None,
    mailbox_id: int | None,
    state: str | None,
    limit: int,
    offset: int,
) -> Listing:
    stmt = _enrollment_visible(_enrollment_select(), who).order_by(Enrollment.id)
    if cadence_id:
        stmt = stmt.where(Enrollment.cadence_id == cadence_id)
    if prospect_id:
        stmt = stmt.where(Enrollment.prospect_id == prospect_id)
    if mailbox_id:
        stmt = stmt.where(Enrollment.mailbox_id == mailbox_id)
    if state:
        stmt = stmt.where(Enrollment.state == state)
    total = int(
        await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    )
    rows = (await session.execute(stmt.limit(limit).offset(offset))).all()
    return Listing([enrollment_dict(r) for r in rows], total)


async def enrollment(
    session: AsyncSession, who: Principal, enrollment_id: int
) -> dict[str, Any] | None:
    stmt = _enrollment_visible(_enrollment_select(), who).where(Enrollment.id == enrollment_id)
    row = (await session.execute(stmt)).first()
    return enrollment_dict(row) if row is not None else None


async def activity(
    session: AsyncSession,
    who: Principal,
    *,
    kind: str | None,
    mailbox_id: int | None,
    prospect_id: int | None,
    enrollment_id: int | None,
    cadence_id: int | None,
    limit: int,
    offset: int,
) -> Listing:
    stmt = (
        select(Activity)
        .outerjoin(Mailbox, Mailbox.id == Activity.mailbox_id)
        .outerjoin(Prospect, Prospect.id == Activity.prospect_id)
        .order_by(Activity.id.desc())
    )
    if not who.is_admin:
        stmt = stmt.where(or_(Mailbox.owner_id == who.user_id, Prospect.owner_id == who.user_id))
    if kind:
        stmt = stmt.where(Activity.kind == kind)
    if mailbox_id:
        stmt = stmt.where(Activity.mailbox_id == mailbox_id)
    if prospect_id:
        stmt = stmt.where(Activity.prospect_id == prospect_id)
    if enrollment_id:
        stmt = stmt.where(Activity.enrollment_id == enrollment_id)
    if cadence_id:
        stmt = stmt.where(
            Activity.enrollment_id.in_(
                select(Enrollment.id).where(Enrollment.cadence_id == cadence_id)
            )
        )
    return await _page(session, stmt, limit, offset)


def reply_text_of(row: Activity) -> str | None:
    """The extracted text of a reply, when the activity is one (issue 5 stores it in data)."""
    data = row.data or {}
    for key in ("reply_text", "text", "excerpt"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None
