"""Webhooks: signed JSON events to URLs the team registered.

Every event is POSTed as JSON with a signature header so the receiver can prove it came from
this Cadence and was not replayed::

    Cadence-Signature: t=1764125000,v1=<hex HMAC-SHA256 of "<t>.<body>" with the webhook secret>

Receivers recompute the HMAC over the timestamp, a dot and the raw body, compare in constant
time, and reject timestamps older than a few minutes.

Delivery never runs inside a watcher or a sender: events are queued and a separate loop posts
them, retrying with exponential backoff and jitter, so a slow or failing receiver slows nobody.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

log = logging.getLogger("cadence.webhooks")

SIGNATURE_HEADER = "Cadence-Signature"
MAX_ATTEMPTS = 8
TIMEOUT_S = 10.0


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify(
    secret: str, body: bytes, header: str, tolerance_s: int = 300, now: int | None = None
) -> bool:
    """What a receiver does (and what our tests check)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        ts = int(parts["t"])
    except (KeyError, ValueError):
        return False
    current = int(time.time()) if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    expected = sign(secret, body, ts).split(",", 1)[1].split("=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), sort_keys=True, default=str).encode()


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status: int | None
    error: str | None
    retry_after: timedelta | None  # None: do not retry (delivered, or gave up)


def next_delay(attempt: int, base_s: float = 10.0, cap_s: float = 3600.0) -> timedelta:
    """Exponential backoff with full jitter: 10 s, 20 s, 40 s ... up to an hour."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    event: dict[str, Any],
    attempt: int,
) -> DeliveryResult:
    """POST one event once.  ``attempt`` counts from 1; the result says whether to retry."""
    body = encode_event(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Cadence-Webhooks/1",
        SIGNATURE_HEADER: sign(secret, body),
        "Cadence-Event": str(event.get("type", "")),
        "Cadence-Delivery": str(event.get("id", "")),
    }
    try:
        response = await client.post(url, content=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        return _failed(None, f"{type(exc).__name__}: {exc}", attempt)
    if 200 <= response.status_code < 300:
        return DeliveryResult(True, response.status_code, None, None)
    if response.status_code in (400, 401, 403, 404, 410, 422) and attempt >= 3:
        # The receiver keeps refusing this event: more tries will not help.
        return DeliveryResult(False, response.status_code, f"HTTP {response.status_code}", None)
    return _failed(response.status_code, f"HTTP {response.status_code}", attempt)


def _failed(status: int | None, error: str, attempt: int) -> DeliveryResult:
    if attempt >= MAX_ATTEMPTS:
        log.warning("webhook gave up after %d attempts: %s", attempt, error)
        return DeliveryResult(False, status, error, None)
    return DeliveryResult(False, status, error, next_delay(attempt))
