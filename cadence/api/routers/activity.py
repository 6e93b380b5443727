"""The activity timeline: messages sent, replies (with their extracted text), bounces, holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cadence.api.deps import Pages, State, Who
from cadence.api.schemas import ActivityOut, Page
from cadence.engine import listings

router = APIRouter(prefix="/activity", tags=["activity"])
Filter = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


@router.get("")
async def list_activity(
    who: Who,
    state: State,
    pages: Pages,
    kind: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
    mailbox_id: Filter = None,
    prospect_id: Filter = None,
    enrollment_id: Filter = None,
    cadence_id: Filter = None,
) -> Page[ActivityOut]:
    """Newest first."""
    async with state.runtime.db.transaction() as s:
        found = await listings.activity(
            s,
            who,
            kind=kind,
            mailbox_id=mailbox_id,
            prospect_id=prospect_id,
            enrollment_id=enrollment_id,
            cadence_id=cadence_id,
            limit=pages.limit,
            offset=pages.offset,
        )
        items = []
        for row in found.items:
            out = ActivityOut.model_validate(row)
            out.reply_text = listings.reply_text_of(row)
            items.append(out)
    return Page(items=items, total=found.total, limit=pages.limit, offset=pages.offset)
