"""Enrolling prospects in a cadence, and listing enrollments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cadence.engine.scheduling import add_delay, parse_holidays, zone
from cadence.errors import UsageError
from cadence.store.models import Enrollment, EnrollmentState
from cadence.store.repositories import (
    CadenceRepository,
    EnrollmentRepository,
    MailboxRepository,
    OutboundRepository,
    ProspectRepository,
)


@dataclass(frozen=True)
class EnrollResult:
    enrolled: int
    already: int
    do_not_contact: int


async def enroll(
    session: AsyncSession,
    *,
    cadence_name: str,
    mailbox_address: str,
    emails: list[str] | None,
    now: datetime,
) -> EnrollResult:
    """Enroll the given prospects (all when ``emails`` is None) who are not enrolled yet."""
    cadence = await CadenceRepository(session).by_name(cadence_name)
    if cadence is None:
        raise UsageError(
            f"no cadence named {cadence_name!r}",
            code="unknown_cadence",
            hint="apply it first: cadence cadence apply FILE.yaml",
        )
    mailbox = await MailboxRepository(session).by_address(mailbox_address)
    if mailbox is None:
        raise UsageError(
            f"no mailbox {mailbox_address}",
            code="unknown_mailbox",
            hint="add it first: cadence mailbox add",
        )
    prospects_repo = ProspectRepository(session)
    if emails is None:
        prospects = await prospects_repo.all()
    else:
        by_email = await prospects_repo.by_emails(emails)
        missing = [e for e in emails if e.strip().lower() not in by_email]
        if missing:
            raise UsageError(
                f"unknown prospect(s): {', '.join(missing[:5])}",
                code="unknown_prospect",
                hint="import them first: cadence prospects import FILE.csv",
            )
        prospects = list(by_email.values())
    repo = EnrollmentRepository(session)
    already_ids = await repo.existing_prospect_ids(cadence.id)
    first = cadence.steps[0]
    due = add_delay(
        now,
        business_days=first.delay_business_days,
        hours=first.delay_hours,
        tz=zone(mailbox.timezone),
        holidays=parse_holidays(mailbox.holidays),
    )
    enrolled = already = dnc = 0
    for prospect in prospects:
        if prospect.id in already_ids:
            already += 1
            continue
        if prospect.do_not_contact or prospect.undeliverable:
            dnc += 1  # never enroll an address that opted out or hard-bounced
            continue
        session.add(
            Enrollment(
                prospect_id=prospect.id,
                cadence_id=cadence.id,
                mailbox_id=mailbox.id,
                state=EnrollmentState.ACTIVE,
                current_step=0,
                next_due_at=due,
                reason="enrolled",
                created_at=now,
                updated_at=now,
            )
        )
        enrolled += 1
    await session.flush()
    return EnrollResult(enrolled, already, dnc)


async def list_enrollments(
    session: AsyncSession, *, cadence: str | None = None, state: str | None = None
) -> list[dict[str, Any]]:
    rows = await EnrollmentRepository(session).listing(cadence=cadence, state=state)
    return [
        {
            "prospect": r.prospect,
            "cadence": r.cadence,
            "mailbox": r.mailbox,
            "state": r.state,
            # 1-based for people: the step to send next; for a finished cadence, its last.
            "step": r.step if r.state == EnrollmentState.FINISHED else r.step + 1,
            "next_due_at": r.next_due_at.isoformat() if r.next_due_at else None,
            "reason": r.reason,
        }
        for r in rows
    ]


# What an inbound message (classified by the reply watcher) does to the enrollment it answers.
RESPONSE_STATES = {
    "replied": EnrollmentState.REPLIED,
    "bounced": EnrollmentState.BOUNCED,
    "opted_out": EnrollmentState.OPTED_OUT,
    "out_of_office": EnrollmentState.PAUSED,
}


async def record_response(
    session: AsyncSession,
    referenced_ids: list[str],
    kind: str,
    *,
    now: datetime,
    reason: str,
    until: datetime | None = None,
) -> list[int]:
    """Stop (or, for an out-of-office, pause until ``until``) the enrollments whose sent
    messages ``referenced_ids`` names (In-Reply-To / References / a DSN's original id).
    Returns the enrollment ids changed.  Only active or paused enrollments change: a reply
    after the cadence finished is recorded by the caller but changes nothing here."""
    state = RESPONSE_STATES.get(kind)
    if state is None:
        raise UsageError(f"unknown response kind {kind!r}", code="bad_response_kind")
    outbounds = await OutboundRepository(session).by_message_ids(referenced_ids)
    changed: list[int] = []
    repo = EnrollmentRepository(session)
    for enrollment_id in sorted({o.enrollment_id for o in outbounds if o.enrollment_id}):
        enrollment = await repo.claim_any(enrollment_id)
        if enrollment is None or enrollment.state not in (
            EnrollmentState.ACTIVE,
            EnrollmentState.PAUSED,
        ):
            continue
        enrollment.state = state
        enrollment.reason = reason
        enrollment.updated_at = now
        if state is EnrollmentState.PAUSED:
            enrollment.paused_until = until
            enrollment.next_due_at = None
        else:
            enrollment.next_due_at = None
            enrollment.paused_until = None
        if kind == "opted_out":
            prospect = await ProspectRepository(session).get(enrollment.prospect_id)
            if prospect is not None:
                prospect.do_not_contact = True
        changed.append(enrollment.id)
    await session.flush()
    return changed


async def resume(
    session: AsyncSession,
    *,
    cadence_name: str,
    email: str,
    now: datetime,
    unknown_outcome: str | None = None,
) -> str:
    """Resume a paused enrollment.  When its last message's outcome is unknown (the worker
    died while sending and the Sent folder could not tell), the person must say what they
    found: ``"sent"`` (it is in the prospect's thread / the Sent folder) or ``"resend"``."""
    from cadence.store.models import OutboundState

    prospect = await ProspectRepository(session).by_email(email)
    cadence = await CadenceRepository(session).by_name(cadence_name)
    if prospect is None or cadence is None:
        raise UsageError("no such prospect or cadence", code="unknown_enrollment")
    rows = await EnrollmentRepository(session).for_cadence_and_prospects(cadence.id, [prospect.id])
    if not rows:
        raise UsageError(f"{email} is not enrolled in {cadence_name!r}", code="unknown_enrollment")
    enrollment = rows[0]
    if enrollment.state != EnrollmentState.PAUSED:
        raise UsageError(f"the enrollment is {enrollment.state}, not paused", code="not_paused")
    outbound = await OutboundRepository(session).for_step(enrollment.id, enrollment.current_step)
    if outbound is not None and outbound.state == OutboundState.UNKNOWN:
        if unknown_outcome == "sent":
            outbound.state = OutboundState.SENT
            outbound.sent_at = outbound.sent_at or outbound.updated_at
            outbound.smtp_reply = "confirmed sent by a person"
            mailbox = await MailboxRepository(session).get(enrollment.mailbox_id)
            assert mailbox is not None
            steps = cadence.steps
            nxt = enrollment.current_step + 1
            enrollment.current_step = nxt
            if nxt >= len(steps):
                enrollment.state = EnrollmentState.FINISHED
                enrollment.next_due_at = None
                enrollment.reason = "finished (last message confirmed sent)"
                return "finished"
            enrollment.next_due_at = add_delay(
                now,
                business_days=steps[nxt].delay_business_days,
                hours=steps[nxt].delay_hours,
                tz=zone(mailbox.timezone),
                holidays=parse_holidays(mailbox.holidays),
            )
        elif unknown_outcome == "resend":
            outbound.state = OutboundState.RETRY  # same Message-ID: a duplicate threads as one
            enrollment.next_due_at = now
        else:
            raise UsageError(
                "the last message's outcome is unknown: look in the Sent folder and the "
                "prospect's thread, then resume with --as-sent or --resend",
                code="outcome_unknown",
            )
    else:
        enrollment.next_due_at = now
    enrollment.state = EnrollmentState.ACTIVE
    enrollment.paused_until = None
    enrollment.reason = "resumed"
    enrollment.updated_at = now
    await session.flush()
    return "active"
