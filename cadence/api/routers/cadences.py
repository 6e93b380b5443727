"""Cadences and their steps, a preview of each step for a prospect, and statistics."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from cadence.api.deps import AppState, Pages, State, Who
from cadence.api.errors import not_found
from cadence.api.schemas import (
    CadenceIn,
    CadenceOut,
    CadenceStats,
    Page,
    PreviewIn,
    PreviewOut,
    StepOut,
    StepStats,
)
from cadence.api.services import apply_owned_cadence, cadence_yaml
from cadence.engine import listings
from cadence.engine.accounts import Principal
from cadence.engine.sending import SendingEngine
from cadence.engine.stats import cadence_figures
from cadence.engine.templates import TemplateError
from cadence.errors import UsageError
from cadence.store.models import Cadence, Enrollment, Mailbox, Prospect, Step

router = APIRouter(prefix="/cadences", tags=["cadences"])
CadenceId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def steps_as_yaml_dicts(body: CadenceIn) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for step in body.steps:
        d: dict[str, Any] = {"type": step.type}
        for key in ("subject", "body", "html"):
            value = getattr(step, key)
            if value is not None and value != "":
                d[key] = value
        if step.delay is not None and (step.delay.business_days or step.delay.hours):
            d["delay"] = {
                k: v
                for k, v in (
                    ("business_days", step.delay.business_days),
                    ("hours", step.delay.hours),
                )
                if v
            }
        if step.window is not None:
            d["window"] = {"days": list(step.window.days), "from": step.window.start,
                           "to": step.window.end}  # fmt: skip
        if step.reply_in_thread:
            d["reply_in_thread"] = True
        out.append(d)
    return out


async def _out(s: AsyncSession, cadence_id: int) -> CadenceOut:
    from cadence.store.repositories import CadenceRepository

    s.expunge_all()
    cadence = await CadenceRepository(s).get(cadence_id)
    assert cadence is not None
    return CadenceOut.model_validate(cadence)


@router.get("")
async def list_cadences(
    who: Who,
    state: State,
    pages: Pages,
    name: Annotated[str | None, Query(max_length=200, description="Name contains.")] = None,
) -> Page[CadenceOut]:
    async with state.runtime.db.transaction() as s:
        found = await listings.cadences(
            s, who, name=_clean(name), limit=pages.limit, offset=pages.offset
        )
        return Page(
            items=[CadenceOut.model_validate(c) for c in found.items],
            total=found.total,
            limit=pages.limit,
            offset=pages.offset,
        )


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return value.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8") or None


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_cadence(body: CadenceIn, who: Who, state: State) -> CadenceOut:
    """Create a cadence; the steps follow the rules of `cadence cadence apply`."""
    text = cadence_yaml(body.name, body.description, steps_as_yaml_dicts(body))
    async with state.runtime.db.transaction() as s:
        result = await apply_owned_cadence(s, who, text, cadence_id=None, source=body.name)
        return await _out(s, result.cadence_id)


@router.get("/{cadence_id}")
async def get_cadence(cadence_id: CadenceId, who: Who, state: State) -> CadenceOut:
    async with state.runtime.db.transaction() as s:
        cadence = await listings.cadence(s, who, cadence_id)
        if cadence is None:
            raise not_found("cadence", cadence_id)
        return CadenceOut.model_validate(cadence)


@router.put("/{cadence_id}")
async def update_cadence(
    cadence_id: CadenceId, body: CadenceIn, who: Who, state: State
) -> CadenceOut:
    """Replace the cadence's steps in place: enrollments keep their place."""
    text = cadence_yaml(body.name, body.description, steps_as_yaml_dicts(body))
    async with state.runtime.db.transaction() as s:
        if await listings.cadence(s, who, cadence_id) is None:
            raise not_found("cadence", cadence_id)
        await apply_owned_cadence(s, who, text, cadence_id=cadence_id, source=body.name)
        return await _out(s, cadence_id)


@router.delete("/{cadence_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_cadence(cadence_id: CadenceId, who: Who, state: State) -> None:
    """Delete the cadence and its enrollments (messages already sent stay in the store)."""
    async with state.runtime.db.transaction() as s:
        cadence = await listings.cadence(s, who, cadence_id)
        if cadence is None:
            raise not_found("cadence", cadence_id)
        await s.delete(cadence)


@router.get("/{cadence_id}/steps")
async def list_steps(cadence_id: CadenceId, who: Who, state: State) -> list[StepOut]:
    async with state.runtime.db.transaction() as s:
        cadence = await listings.cadence(s, who, cadence_id)
        if cadence is None:
            raise not_found("cadence", cadence_id)
        return [StepOut.model_validate(st) for st in cadence.steps]


async def preview_step(
    s: AsyncSession,
    state: AppState,
    who: Principal,
    cadence: Cadence,
    prospect: Prospect,
    mailbox: Mailbox | None,
    step_no: int,
) -> PreviewOut:
    """`cadence preview`: render a step as it would be sent, storing nothing."""
    if not 1 <= step_no <= len(cadence.steps):
        raise UsageError(f"{cadence.name!r} has steps 1 to {len(cadence.steps)}", code="bad_step")
    if mailbox is None:  # no mailbox yet: preview as the user's own address
        mailbox = Mailbox(address=who.email, display_name=None)
    enrollment = Enrollment(prospect=prospect, cadence=cadence, mailbox=mailbox)
    engine = SendingEngine(state.runtime.db, state.runtime.secrets, state.clock)
    step = cadence.steps[step_no - 1]
    reply = step.reply_in_thread and step_no > 1
    if reply:
        # A preview has no thread to quote: show the body under the first step's subject.
        first = cadence.steps[0]
        step = Step(
            position=step.position,
            type=step.type,
            subject=first.subject,
            body=step.body,
            html=step.html,
            reply_in_thread=False,
        )
    try:
        outbound = await engine.compose(s, mailbox, enrollment, step, state.now())
    except TemplateError as exc:
        return PreviewOut.model_validate(
            {"step": step_no, "held": True, "reason": exc.message, "hint": exc.hint}
        )
    if outbound is None:
        return PreviewOut.model_validate(
            {
                "step": step_no,
                "held": False,
                "reason": "this step replies in the thread of the previous message",
            }
        )
    msg = message_from_bytes(outbound.raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body(("plain",))
    return PreviewOut.model_validate(
        {
            "step": step_no,
            "held": False,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": ("Re: " if reply else "") + str(msg["Subject"]),
            "in_reply_to": str(msg["In-Reply-To"]) if msg["In-Reply-To"] else None,
            "text": body.get_content() if isinstance(body, EmailMessage) else "",
        }
    )


@router.post("/{cadence_id}/preview")
async def preview(cadence_id: CadenceId, body: PreviewIn, who: Who, state: State) -> PreviewOut:
    """What a step would send to one of your prospects (nothing is sent or stored)."""
    async with state.runtime.db.sessions() as s:
        cadence = await listings.cadence(s, who, cadence_id)
        if cadence is None:
            raise not_found("cadence", cadence_id)
        prospect = await listings.prospect(s, who, body.prospect_id)
        if prospect is None:
            raise not_found("prospect", body.prospect_id)
        mailbox = None
        if body.mailbox_id is not None:
            mailbox = await listings.mailbox(s, who, body.mailbox_id)
            if mailbox is None:
                raise not_found("mailbox", body.mailbox_id)
        else:
            mine = await listings.mailboxes(s, who, status=None, limit=1, offset=0)
            mailbox = mine.items[0] if mine.items else None
        try:
            return await preview_step(s, state, who, cadence, prospect, mailbox, body.step)
        finally:
            await s.rollback()


@router.get("/{cadence_id}/stats")
async def cadence_stats(cadence_id: CadenceId, who: Who, state: State) -> CadenceStats:
    """Sent, replied, bounced, out-of-office and reply rate, for the cadence and each step."""
    async with state.runtime.db.transaction() as s:
        cadence = await listings.cadence(s, who, cadence_id)
        if cadence is None:
            raise not_found("cadence", cadence_id)
        fig = await cadence_figures(s, cadence)
    return CadenceStats(
        cadence_id=fig.cadence_id,
        enrolled=fig.enrolled,
        active=fig.active,
        contacted=fig.contacted,
        sent=fig.sent,
        replied=fig.replied,
        bounced=fig.bounced,
        out_of_office=fig.out_of_office,
        finished=fig.finished,
        reply_rate=fig.reply_rate,
        steps=[
            StepStats(
                step=st.step,
                type=st.type,
                sent=st.sent,
                replied=st.replied,
                bounced=st.bounced,
                out_of_office=st.out_of_office,
                reply_rate=st.reply_rate,
            )
            for st in fig.steps
        ],
    )
