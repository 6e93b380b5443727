"""Events and their webhook delivery.

``queue_event`` runs inside the caller's transaction (a reply stopping an enrollment, say): it
writes one outbox row per active webhook that wants the event, so the event exists exactly
when the change it describes was committed.  ``WebhookDispatcher`` posts the outbox from its
own loop with short transactions (never one held across HTTP), retrying with backoff
(``cadence.engine.webhooks``).  A slow or failing receiver delays only its own deliveries:
posts run concurrently with a per-request timeout, and no watcher or sender ever waits on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from cadence.engine.webhooks import deliver
from cadence.errors import UsageError
from cadence.store.db import Database
from cadence.store.secrets import SecretBox
from cadence.store.tracking_models import DeliveryStatus, Webhook, WebhookDelivery
from cadence.store.tracking_repositories import WebhookRepository

log = logging.getLogger("cadence.webhooks")

EVENT_TYPES = (
    "enrollment.replied",
    "enrollment.paused",
    "enrollment.bounced",
    "enrollment.retry_scheduled",
    "enrollment.opted_out",
    "prospect.undeliverable",
    "prospect.opted_out",
)


def wants(webhook: Webhook, event_type: str) -> bool:
    if not webhook.events:
        return True
    for pattern in webhook.events:
        if pattern == event_type or pattern == "*":
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


async def queue_event(
    session: AsyncSession, event_type: str, data: dict[str, Any], *, now: datetime
) -> dict[str, Any]:
    """Queue one event for every webhook that wants it (in the caller's transaction)."""
    event = {
        "id": uuid.uuid4().hex,
        "type": event_type,
        "created_at": now.astimezone(UTC).isoformat(),
        "data": data,
    }
    for webhook in await WebhookRepository(session).active():
        if wants(webhook, event_type):
            session.add(
                WebhookDelivery(
                    webhook_id=webhook.id,
                    event_id=event["id"],
                    event_type=event_type,
                    event=event,
                    status=DeliveryStatus.PENDING,
                    created_at=now,
                )
            )
    await session.flush()
    return event


async def add_webhook(
    session: AsyncSession,
    box: SecretBox,
    *,
    url: str,
    secret: str,
    events: list[str] | None = None,
) -> Webhook:
    """Register a receiver.  The secret is encrypted at rest; it signs every delivery."""
    if not url.startswith(("https://", "http://")):
        raise UsageError(f"not an http(s) URL: {url!r}", code="bad_webhook_url")
    if len(secret) < 16:
        raise UsageError(
            "a webhook secret needs at least 16 characters",
            code="weak_webhook_secret",
            hint="generate one: python -c 'import secrets; print(secrets.token_hex(32))'",
        )
    for name in events or []:
        if name not in EVENT_TYPES and name != "*" and not name.endswith(".*"):
            raise UsageError(
                f"unknown event type {name!r}",
                code="bad_webhook_event",
                hint="one of: " + ", ".join(EVENT_TYPES),
            )
    return await WebhookRepository(session).add(
        Webhook(url=url, secret=box.encrypt(secret), events=list(events or []), active=True)
    )


@dataclass
class DispatchReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _system_now() -> datetime:
    return datetime.now(UTC)


class WebhookDispatcher:
    """Posts queued events.  Real time (not the engine's injectable clock): deliveries are
    network events, and their retries must happen whatever date the scheduler is told."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        *,
        interval: float = 2.0,
        concurrency: int = 10,
        lease: timedelta = timedelta(minutes=2),
        client: httpx.AsyncClient | None = None,
        now: Callable[[], datetime] = _system_now,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.interval = interval
        self.concurrency = concurrency
        self.lease = lease
        self._client = client
        self._now = now
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Post now (an event was just queued) instead of at the next interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        async with self._http() as client:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self._pass(client)
                except Exception:  # the store is down: try again later, never crash the worker
                    log.exception("webhook delivery pass failed")
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                await asyncio.wait(
                    waiters, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED
                )
                for w in waiters:
                    w.cancel()

    async def run_once(self) -> DispatchReport:
        async with self._http() as client:
            return await self._pass(client)

    @contextlib.asynccontextmanager
    async def _http(self):  # type: ignore[no-untyped-def]
        if self._client is not None:
            yield self._client
            return
        async with httpx.AsyncClient(follow_redirects=False) as client:
            yield client

    async def _pass(self, client: httpx.AsyncClient) -> DispatchReport:
        report = DispatchReport()
        gate = asyncio.Semaphore(self.concurrency)
        while True:
            now = self._now()
            jobs: list[tuple[int, str, str, dict[str, Any], int]] = []
            async with self.db.transaction() as s:
                repo = WebhookRepository(s)
                for delivery in await repo.due_deliveries(now, limit=self.concurrency * 5):
                    webhook = await repo.get(delivery.webhook_id)
                    if webhook is None or not webhook.active:
                        delivery.status = DeliveryStatus.FAILED
                        delivery.last_error = "webhook removed or disabled"
                        continue
                    delivery.attempts += 1
                    # Leased: another worker (or a crash) does not post it twice meanwhile.
                    delivery.next_attempt_at = now + self.lease
                    jobs.append(
                        (
                            delivery.id,
                            webhook.url,
                            self.secrets.decrypt(webhook.secret).value,
                            dict(delivery.event),
                            delivery.attempts,
                        )
                    )
            if not jobs:
                return report

            async def post(job: tuple[int, str, str, dict[str, Any], int]) -> None:
                delivery_id, url, secret, event, attempt = job
                async with gate:
                    result = await deliver(client, url, secret, event, attempt)
                done = self._now()
                async with self.db.transaction() as s:
                    row = await WebhookRepository(s).get_delivery(delivery_id)
                    if row is None:
                        return
                    row.last_status = result.status
                    row.last_error = result.error
                    if result.ok:
                        row.status = DeliveryStatus.DELIVERED
                        row.delivered_at = done
                        row.next_attempt_at = None
                        report.delivered += 1
                    elif result.retry_after is None:
                        row.status = DeliveryStatus.FAILED
                        row.next_attempt_at = None
                        report.failed += 1
                        log.warning(
                            "webhook %s: gave up on event %s: %s",
                            url,
                            event.get("id"),
                            result.error,
                        )
                    else:
                        row.next_attempt_at = done + result.retry_after
                        report.retrying += 1

            await asyncio.gather(*(post(job) for job in jobs))
            if len(jobs) < self.concurrency * 5:
                return report
