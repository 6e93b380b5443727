"""What a person does to one enrollment from the API or the dashboard: pause, resume, stop.

Resuming goes through ``cadence.engine.enrollments.resume`` (the CLI's rule for a message
whose outcome is unknown applies here too)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cadence.engine.enrollments import resume as resume_enrollment
from cadence.errors import UsageError
from cadence.store.models import EnrollmentState
from cadence.store.repositories import CadenceRepository, EnrollmentRepository, ProspectRepository

_OPEN = (EnrollmentState.ACTIVE, EnrollmentState.PAUSED)


async def pause(session: AsyncSession, enrollment_id: int, now: datetime, reason: str) -> str:
    enrollment = await EnrollmentRepository(session).claim_any(enrollment_id)
    if enrollment is None:
        raise UsageError(f"no enrollment {enrollment_id}", code="unknown_enrollment")
    if enrollment.state != EnrollmentState.ACTIVE:
        raise UsageError(f"the enrollment is {enrollment.state}, not active", code="not_active")
    enrollment.state = EnrollmentState.PAUSED
    enrollment.reason = reason
    enrollment.paused_until = None
    enrollment.updated_at = now
    await session.flush()
    return str(enrollment.state)


async def stop(session: AsyncSession, enrollment_id: int, now: datetime, reason: str) -> str:
    enrollment = await EnrollmentRepository(session).claim_any(enrollment_id)
    if enrollment is None:
        raise UsageError(f"no enrollment {enrollment_id}", code="unknown_enrollment")
    if enrollment.state not in _OPEN:
        raise UsageError(f"the enrollment is already {enrollment.state}", code="not_active")
    enrollment.state = EnrollmentState.STOPPED
    enrollment.reason = reason
    enrollment.next_due_at = None
    enrollment.paused_until = None
    enrollment.updated_at = now
    await session.flush()
    return str(enrollment.state)


async def resume(
    session: AsyncSession, enrollment_id: int, now: datetime, unknown_outcome: str | None
) -> str:
    enrollment = await EnrollmentRepository(session).get(enrollment_id)
    if enrollment is None:
        raise UsageError(f"no enrollment {enrollment_id}", code="unknown_enrollment")
    prospect = await ProspectRepository(session).get(enrollment.prospect_id)
    cadence = await CadenceRepository(session).get(enrollment.cadence_id)
    assert prospect is not None and cadence is not None
    return await resume_enrollment(
        session,
        cadence_name=cadence.name,
        email=prospect.email,
        now=now,
        unknown_outcome=unknown_outcome,
    )
