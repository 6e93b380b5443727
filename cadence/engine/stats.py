"""Statistics per cadence and per step: sent, replied, bounced, out-of-office, reply rate;
and the figures ``/metrics`` exports.

A reply is counted against the last step sent before it (the enrollment's ``current_step``
minus one when it stopped); an out-of-office is an activity of kind ``out_of_office``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cadence.store.models import (
    Activity,
    Cadence,
    Enrollment,
    EnrollmentState,
    Mailbox,
    OutboundMessage,
    OutboundState,
)

OUT_OF_OFFICE_KINDS = ("out_of_office", "auto_reply_ooo", "ooo")
REPLY_KINDS = ("reply", "replied", "human_reply")


@dataclass
class StepFigures:
    step: int
    type: str
    sent: int = 0
    replied: int = 0
    bounced: int = 0
    out_of_office: int = 0

    @property
    def reply_rate(self) -> float:
        return round(self.replied / self.sent, 4) if self.sent else 0.0


@dataclass
class CadenceFigures:
    cadence_id: int
    enrolled: int = 0
    active: int = 0
    contacted: int = 0
    sent: int = 0
    replied: int = 0
    bounced: int = 0
    out_of_office: int = 0
    finished: int = 0
    steps: list[StepFigures] = field(default_factory=list)

    @property
    def reply_rate(self) -> float:
        return round(self.replied / self.contacted, 4) if self.contacted else 0.0


async def cadence_figures(session: AsyncSession, cadence: Cadence) -> CadenceFigures:
    out = CadenceFigures(cadence.id)
    steps = {s.position: StepFigures(s.position + 1, s.type) for s in cadence.steps}
    states = await session.execute(
        select(Enrollment.state, func.count(Enrollment.id))
        .where(Enrollment.cadence_id == cadence.id)
        .group_by(Enrollment.state)
    )
    for state, count in states.all():
        out.enrolled += count
        if state == EnrollmentState.ACTIVE:
            out.active += count
        elif state == EnrollmentState.REPLIED:
            out.replied += count
        elif state == EnrollmentState.BOUNCED:
            out.bounced += count
        elif state == EnrollmentState.FINISHED:
            out.finished += count
    in_cadence = select(Enrollment.id).where(Enrollment.cadence_id == cadence.id)
    outbound = await session.execute(
        select(OutboundMessage.step_position, OutboundMessage.state, func.count())
        .where(OutboundMessage.enrollment_id.in_(in_cadence))
        .group_by(OutboundMessage.step_position, OutboundMessage.state)
    )
    for position, state, count in outbound.all():
        fig = steps.get(position)
        if fig is None:
            continue
        if state == OutboundState.SENT:
            fig.sent += count
            out.sent += count
        elif state == OutboundState.BOUNCED:
            fig.bounced += count
    out.contacted = int(
        await session.scalar(
            select(func.count(distinct(OutboundMessage.enrollment_id))).where(
                OutboundMessage.enrollment_id.in_(in_cadence),
                OutboundMessage.state == OutboundState.SENT,
            )
        )
        or 0
    )
    replied = await session.execute(
        select(Enrollment.current_step, func.count())
        .where(Enrollment.cadence_id == cadence.id, Enrollment.state == EnrollmentState.REPLIED)
        .group_by(Enrollment.current_step)
    )
    for current, count in replied.all():
        fig = steps.get(max(current - 1, 0))
        if fig is not None:
            fig.replied += count
    ooo = await session.execute(
        select(Enrollment.current_step, func.count(distinct(Activity.id)))
        .join(Enrollment, Enrollment.id == Activity.enrollment_id)
        .where(Enrollment.cadence_id == cadence.id, Activity.kind.in_(OUT_OF_OFFICE_KINDS))
        .group_by(Enrollment.current_step)
    )
    for current, count in ooo.all():
        out.out_of_office += count
        fig = steps.get(max(current - 1, 0))
        if fig is not None:
            fig.out_of_office += count
    out.steps = [steps[p] for p in sorted(steps)]
    return out


@dataclass
class Metrics:
    messages_sent: int
    replies_detected: int
    queue_depth: int
    enrollments_by_state: dict[str, int]
    mailboxes_by_status: dict[str, int]


async def metrics(session: AsyncSession, now: datetime) -> Metrics:
    sent = await session.scalar(
        select(func.count(OutboundMessage.id)).where(OutboundMessage.state == OutboundState.SENT)
    )
    by_state: dict[str, int] = {
        str(k): int(v)
        for k, v in (
            await session.execute(
                select(Enrollment.state, func.count(Enrollment.id)).group_by(Enrollment.state)
            )
        ).all()
    }
    replies_activity = await session.scalar(
        select(func.count(Activity.id)).where(Activity.kind.in_(REPLY_KINDS))
    )
    queue = await session.scalar(
        select(func.count(Enrollment.id)).where(
            Enrollment.state == EnrollmentState.ACTIVE, Enrollment.next_due_at <= now
        )
    )
    boxes: dict[str, int] = {
        str(k): int(v)
        for k, v in (
            await session.execute(
                select(Mailbox.status, func.count(Mailbox.id)).group_by(Mailbox.status)
            )
        ).all()
    }
    return Metrics(
        messages_sent=int(sent or 0),
        replies_detected=max(int(replies_activity or 0), by_state.get(EnrollmentState.REPLIED, 0)),
        queue_depth=int(queue or 0),
        enrollments_by_state={str(k): int(v) for k, v in by_state.items()},
        mailboxes_by_status={str(k): int(v) for k, v in boxes.items()},
    )
