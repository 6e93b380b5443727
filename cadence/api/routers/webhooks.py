"""Webhooks: receivers of signed JSON events (``cadence.engine.events``).  They belong to the
whole installation, so only admins manage them."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Path, status
from sqlalchemy import select

from cadence.api.deps import Admin, State
from cadence.api.errors import not_found
from cadence.api.schemas import WebhookIn, WebhookOut
from cadence.engine.events import add_webhook
from cadence.store.tracking_models import Webhook
from cadence.store.tracking_repositories import WebhookRepository

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _out(row: Webhook, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=list(row.events or []),
        active=row.active,
        secret=secret,
        created_at=row.created_at,
    )


@router.get("")
async def list_webhooks(who: Admin, state: State) -> list[WebhookOut]:
    async with state.runtime.db.transaction() as s:
        rows = await s.scalars(select(Webhook).order_by(Webhook.id))
        return [_out(r) for r in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(body: WebhookIn, who: Admin, state: State) -> WebhookOut:
    """Register a receiver; the answer carries its signing secret, once."""
    secret = secrets.token_hex(32)
    async with state.runtime.db.transaction() as s:
        row = await add_webhook(
            s, state.runtime.secrets, url=body.url, secret=secret, events=list(body.events)
        )
        return _out(row, secret)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: WebhookId, who: Admin, state: State) -> None:
    async with state.runtime.db.transaction() as s:
        row = await WebhookRepository(s).get(webhook_id)
        if row is None:
            raise not_found("webhook", webhook_id)
        await s.delete(row)
