"""Enrollments: enroll prospects in a cadence from a mailbox; pause, resume, stop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from cadence.api.deps import Pages, State, Who
from cadence.api.errors import not_found
from cadence.api.schemas import EnrollIn, EnrollmentOut, EnrollOut, Page, ResumeIn
from cadence.engine import enrollment_actions, listings
from cadence.engine.enrollments import enroll
from cadence.store.models import EnrollmentState

router = APIRouter(prefix="/enrollments", tags=["enrollments"])
EnrollmentId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Filter = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_enrollments(body: EnrollIn, who: Who, state: State) -> EnrollOut:
    """Enroll your prospects (all of yours not enrolled yet when `prospect_ids` is absent)
    in your cadence, sending from your mailbox."""
    async with state.runtime.db.transaction() as s:
        cadence = await listings.cadence(s, who, body.cadence_id)
        if cadence is None:
            raise not_found("cadence", body.cadence_id)
        mailbox = await listings.mailbox(s, who, body.mailbox_id)
        if mailbox is None:
            raise not_found("mailbox", body.mailbox_id)
        if body.prospect_ids is None:
            emails = await listings.owned_prospect_emails(s, who)
        else:
            ids = sorted(set(body.prospect_ids))
            found = await listings.prospects_by_ids(s, who, ids)
            missing = sorted(set(ids) - {p.id for p in found})
            if missing:
                raise not_found("prospect", ", ".join(map(str, missing[:5])))
            emails = [p.email for p in found]
        if not emails:
            return EnrollOut(enrolled=0, already=0, do_not_contact=0)
        result = await enroll(
            s,
            cadence_name=cadence.name,
            mailbox_address=mailbox.address,
            emails=emails,
            now=state.now(),
        )
        return EnrollOut(
            enrolled=result.enrolled, already=result.already, do_not_contact=result.do_not_contact
        )


@router.get("")
async def list_enrollments(
    who: Who,
    state: State,
    pages: Pages,
    cadence_id: Filter = None,
    prospect_id: Filter = None,
    mailbox_id: Filter = None,
    state_: Annotated[EnrollmentState | None, Query(alias="state")] = None,
) -> Page[EnrollmentOut]:
    async with state.runtime.db.transaction() as s:
        found = await listings.enrollments(
            s,
            who,
            cadence_id=cadence_id,
            prospect_id=prospect_id,
            mailbox_id=mailbox_id,
            state=state_,
            limit=pages.limit,
            offset=pages.offset,
        )
    return Page(
        items=[EnrollmentOut(**row) for row in found.items],
        total=found.total,
        limit=pages.limit,
        offset=pages.offset,
    )


async def _get(state: State, who: Who, enrollment_id: int) -> dict[str, Any]:
    async with state.runtime.db.transaction() as s:
        row = await listings.enrollment(s, who, enrollment_id)
    if row is None:
        raise not_found("enrollment", enrollment_id)
    return row


@router.get("/{enrollment_id}")
async def get_enrollment(enrollment_id: EnrollmentId, who: Who, state: State) -> EnrollmentOut:
    return EnrollmentOut(**await _get(state, who, enrollment_id))


@router.post("/{enrollment_id}/pause")
async def pause(enrollment_id: EnrollmentId, who: Who, state: State) -> EnrollmentOut:
    async with state.runtime.db.transaction() as s:
        if await listings.enrollment(s, who, enrollment_id) is None:
            raise not_found("enrollment", enrollment_id)
        await enrollment_actions.pause(s, enrollment_id, state.now(), f"paused by {who.email}")
    return EnrollmentOut(**await _get(state, who, enrollment_id))


@router.post("/{enrollment_id}/resume")
async def resume(
    enrollment_id: EnrollmentId, who: Who, state: State, body: ResumeIn | None = None
) -> EnrollmentOut:
    """Resume a paused enrollment.  When its last message's outcome is unknown, say what
    the Sent folder showed: `unknown_outcome` = `sent` or `resend`."""
    async with state.runtime.db.transaction() as s:
        if await listings.enrollment(s, who, enrollment_id) is None:
            raise not_found("enrollment", enrollment_id)
        await enrollment_actions.resume(
            s, enrollment_id, state.now(), body.unknown_outcome if body else None
        )
    return EnrollmentOut(**await _get(state, who, enrollment_id))


@router.post("/{enrollment_id}/stop")
async def stop(enrollment_id: EnrollmentId, who: Who, state: State) -> EnrollmentOut:
    async with state.runtime.db.transaction() as s:
        if await listings.enrollment(s, who, enrollment_id) is None:
            raise not_found("enrollment", enrollment_id)
        await enrollment_actions.stop(s, enrollment_id, state.now(), f"stopped by {who.email}")
    return EnrollmentOut(**await _get(state, who, enrollment_id))
