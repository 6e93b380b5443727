"""Queries of reply tracking (checkpoints, inbound messages, quarantine, webhooks).  Like
``cadence.store.repositories``: they add and flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from cadence.store.models import (
    Enrollment,
    EnrollmentState,
    Mailbox,
    OutboundMessage,
    OutboundState,
    Prospect,
)
from cadence.store.tracking_models import (
    DeliveryStatus,
    FolderCheckpoint,
    InboundMessage,
    OutboundAlias,
    QuarantinedMessage,
    Webhook,
    WebhookDelivery,
)

OPEN_STATES = (EnrollmentState.ACTIVE, EnrollmentState.PAUSED)
MAILBOX_PAUSED = "paused"  # paused by its owner (set by the API)


class CheckpointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, mailbox_id: int, folder: str) -> FolderCheckpoint | None:
        return await self.session.scalar(
            select(FolderCheckpoint).where(
                FolderCheckpoint.mailbox_id == mailbox_id, FolderCheckpoint.folder == folder
            )
        )

    async def for_mailbox(self, mailbox_id: int) -> list[FolderCheckpoint]:
        rows = await self.session.scalars(
            select(FolderCheckpoint).where(FolderCheckpoint.mailbox_id == mailbox_id)
        )
        return list(rows)

    async def put(
        self,
        mailbox_id: int,
        folder: str,
        uidvalidity: int,
        last_uid: int,
        synced_at: datetime | None,
    ) -> None:
        row = await self.get(mailbox_id, folder)
        if row is None:
            row = FolderCheckpoint(mailbox_id=mailbox_id, folder=folder)
            self.session.add(row)
        row.uidvalidity = uidvalidity
        row.last_uid = last_uid
        row.synced_at = synced_at
        await self.session.flush()


class InboundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def seen(self, mailbox_id: int, message_id: str) -> InboundMessage | None:
        return await self.session.scalar(
            select(InboundMessage).where(
                InboundMessage.mailbox_id == mailbox_id, InboundMessage.message_id == message_id
            )
        )

    async def add(self, row: InboundMessage) -> InboundMessage:
        self.session.add(row)
        await self.session.flush()
        return row

    async def for_enrollment(self, enrollment_id: int) -> list[InboundMessage]:
        rows = await self.session.scalars(
            select(InboundMessage)
            .where(InboundMessage.enrollment_id == enrollment_id)
            .order_by(InboundMessage.id)
        )
        return list(rows)

    async def recent(self, limit: int = 100) -> list[InboundMessage]:
        rows = await self.session.scalars(
            select(InboundMessage).order_by(InboundMessage.id.desc()).limit(limit)
        )
        return list(rows)


class MatchRepository:
    """What an inbound message may answer: outbound rows and enrolled prospects."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def outbound_by_ids(self, message_ids: Sequence[str]) -> list[OutboundMessage]:
        """Outbound rows known by these ids: ours, the provider's rewrite, or an earlier id
        of the row (a step re-sent after a soft bounce)."""
        ids = list(dict.fromkeys(m.strip() for m in message_ids if m and m.strip()))[:200]
        if not ids:
            return []
        aliased = select(OutboundAlias.outbound_id).where(OutboundAlias.message_id.in_(ids))
        rows = await self.session.scalars(
            select(OutboundMessage).where(
                or_(
                    OutboundMessage.message_id.in_(ids),
                    OutboundMessage.provider_message_id.in_(ids),
                    OutboundMessage.id.in_(aliased),
                )
            )
        )
        return list(rows)

    async def alias_ids(self, outbound_id: int) -> list[str]:
        rows = await self.session.scalars(
            select(OutboundAlias.message_id).where(OutboundAlias.outbound_id == outbound_id)
        )
        return list(rows)

    async def add_alias(self, outbound_id: int, message_id: str, now: datetime) -> None:
        self.session.add(
            OutboundAlias(outbound_id=outbound_id, message_id=message_id, created_at=now)
        )
        await self.session.flush()

    async def outbound_by_thread_guid(self, mailbox_id: int, guid: str) -> list[OutboundMessage]:
        rows = await self.session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.mailbox_id == mailbox_id, OutboundMessage.thread_guid == guid)
            .order_by(OutboundMessage.id)
        )
        return list(rows)

    async def sent_enrollments_of(
        self, mailbox_id: int, *, email: str | None = None, domain: str | None = None
    ) -> list[Enrollment]:
        """Open enrollments on this mailbox that we have already written to, of the prospect
        with this address (or of every prospect at this domain)."""
        stmt = (
            select(Enrollment)
            .join(Prospect, Prospect.id == Enrollment.prospect_id)
            .where(
                Enrollment.mailbox_id == mailbox_id,
                Enrollment.state.in_(OPEN_STATES),
                Enrollment.id.in_(
                    select(OutboundMessage.enrollment_id).where(
                        OutboundMessage.state == OutboundState.SENT
                    )
                ),
            )
            .order_by(Enrollment.id)
        )
        if email is not None:
            stmt = stmt.where(Prospect.email == email.strip().lower())
        elif domain is not None:
            stmt = stmt.where(Prospect.email.like(f"%@{domain.strip().lower()}"))
        else:
            return []
        return list(await self.session.scalars(stmt))

    async def prospects_by_emails(self, emails: Sequence[str]) -> list[Prospect]:
        keys = list({e.strip().lower() for e in emails if e and "@" in e})
        if not keys:
            return []
        return list(await self.session.scalars(select(Prospect).where(Prospect.email.in_(keys))))

    async def open_enrollments_of(self, prospect_ids: Sequence[int]) -> list[Enrollment]:
        if not prospect_ids:
            return []
        stmt = (
            select(Enrollment)
            .where(Enrollment.prospect_id.in_(prospect_ids), Enrollment.state.in_(OPEN_STATES))
            .order_by(Enrollment.id)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return list(await self.session.scalars(stmt))

    async def later_outbound(self, enrollment_id: int, position: int) -> OutboundMessage | None:
        return await self.session.scalar(
            select(OutboundMessage)
            .where(
                OutboundMessage.enrollment_id == enrollment_id,
                OutboundMessage.step_position > position,
            )
            .limit(1)
        )


class QuarantineRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: QuarantinedMessage) -> QuarantinedMessage:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, quarantine_id: int) -> QuarantinedMessage | None:
        return await self.session.get(QuarantinedMessage, quarantine_id)

    async def open_ids(self) -> list[int]:
        rows = await self.session.scalars(
            select(QuarantinedMessage.id)
            .where(QuarantinedMessage.resolved.is_(False))
            .order_by(QuarantinedMessage.id)
        )
        return list(rows)

    async def listing(self, include_resolved: bool = False) -> list[tuple[QuarantinedMessage, str]]:
        stmt = (
            select(QuarantinedMessage, Mailbox.address)
            .join(Mailbox, Mailbox.id == QuarantinedMessage.mailbox_id, isouter=True)
            .order_by(QuarantinedMessage.id)
        )
        if not include_resolved:
            stmt = stmt.where(QuarantinedMessage.resolved.is_(False))
        return [(q, address or "") for q, address in (await self.session.execute(stmt)).all()]


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, webhook: Webhook) -> Webhook:
        self.session.add(webhook)
        await self.session.flush()
        return webhook

    async def active(self) -> list[Webhook]:
        rows = await self.session.scalars(
            select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id)
        )
        return list(rows)

    async def get(self, webhook_id: int) -> Webhook | None:
        return await self.session.get(Webhook, webhook_id)

    async def due_deliveries(self, now: datetime, limit: int = 50) -> list[WebhookDelivery]:
        stmt = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                or_(
                    WebhookDelivery.next_attempt_at.is_(None),
                    WebhookDelivery.next_attempt_at <= now,
                ),
            )
            .order_by(WebhookDelivery.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return list(await self.session.scalars(stmt))

    async def get_delivery(self, delivery_id: int) -> WebhookDelivery | None:
        return await self.session.get(WebhookDelivery, delivery_id)

    async def deliveries(self) -> list[WebhookDelivery]:
        rows = await self.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        return list(rows)


async def watched_mailboxes(session: AsyncSession) -> list[Mailbox]:
    """Mailboxes to watch: all but those their owner paused.  A mailbox that needs attention
    (its SMTP login failed) is still watched: replies must not wait for the password."""
    rows = await session.scalars(
        select(Mailbox).where(Mailbox.status != MAILBOX_PAUSED).order_by(Mailbox.id)
    )
    return list(rows)
