"""Webhook signing and delivery against a real local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cadence.engine.webhooks import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    deliver,
    encode_event,
    next_delay,
    sign,
    verify,
)
from cadence.testing.http_server import HttpTestServer, Reply

EVENT = {"id": "evt_1", "type": "enrollment.replied", "enrollment_id": 7, "reply_text": "Yes!"}


@pytest.fixture
def receiver() -> Iterator[HttpTestServer]:
    server = HttpTestServer(tls=None).start()
    yield server
    server.stop()


def test_signature_round_trip_and_tampering() -> None:
    body = encode_event(EVENT)
    header = sign("s3cret", body, timestamp=1_764_125_000)
    assert verify("s3cret", body, header, now=1_764_125_010)
    assert not verify("other", body, header, now=1_764_125_010)
    assert not verify("s3cret", body + b" ", header, now=1_764_125_010)
    assert not verify("s3cret", body, header, now=1_764_125_000 + 3600)  # replayed later
    assert not verify("s3cret", body, "garbage", now=1_764_125_000)


async def test_delivery_is_signed_json(receiver: HttpTestServer) -> None:
    receiver.route("127.0.0.1", "/hook", Reply(status=204))
    async with httpx.AsyncClient() as client:
        result = await deliver(client, receiver.url("127.0.0.1", "/hook"), "s3cret", EVENT, 1)
    assert result.ok and result.retry_after is None
    (request,) = receiver.requests_for("127.0.0.1")
    assert request.headers["content-type"] == "application/json"
    assert verify("s3cret", request.body, request.headers[SIGNATURE_HEADER.lower()])
    assert request.headers["cadence-event"] == "enrollment.replied"


async def test_failures_are_retried_with_growing_delays_then_given_up(
    receiver: HttpTestServer,
) -> None:
    receiver.route("127.0.0.1", "/hook", Reply(status=503))
    async with httpx.AsyncClient() as client:
        first = await deliver(client, receiver.url("127.0.0.1", "/hook"), "k", EVENT, 1)
        last = await deliver(client, receiver.url("127.0.0.1", "/hook"), "k", EVENT, MAX_ATTEMPTS)
        unreachable = await deliver(client, "http://127.0.0.1:9/hook", "k", EVENT, 1)
    assert not first.ok and first.status == 503 and first.retry_after is not None
    assert last.retry_after is None and last.error == "HTTP 503"
    assert not unreachable.ok and unreachable.retry_after is not None
    assert next_delay(1).total_seconds() <= 10 < next_delay(5).total_seconds()
