"""Through the API against the test bed, with the real workers: connect a mailbox, create a
cadence, import prospects, enroll, let the sender send step 1, answer it from the prospect's
mailbox, let the watcher detect the reply — and see both on the activity timeline, in the
statistics and in /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from cadence.testing.fixtures import TestMailbox
from cadence.workers.watcher import run_workers

from .conftest import Api, Users
from .helpers import append_reply, connection_body

# A Friday inside the step's window; the sender uses this fixed clock.
FRIDAY = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


async def test_sent_step_and_detected_reply_on_the_timeline(
    api: Api, users: Users, new_mailbox: Callable[..., TestMailbox]
) -> None:
    rep, pat = new_mailbox("rep"), new_mailbox("pat")
    api.app.state.cadence.clock = lambda: FRIDAY
    body = connection_body(rep, display_name="Rita Rep", min_gap_seconds=0, jitter_seconds=0)
    r = await api.call("POST", "/api/v1/mailboxes", users.admin, json=body)
    assert r.status_code == 201, r.text
    mailbox_id = r.json()["id"]
    cadence = {
        "name": "intro",
        "steps": [
            {
                "subject": "Quick question, {{ first_name }}",
                "body": "Hi {{ first_name }}, shall we talk?",
                "window": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                           "from": "00:00", "to": "24:00"},
            },
            {"delay": {"business_days": 2}, "reply_in_thread": True, "body": "Following up."},
        ],
    }  # fmt: skip
    cid = (await api.call("POST", "/api/v1/cadences", users.admin, json=cadence)).json()["id"]
    csv = f"email,first_name,company\n{pat.address},Pat,Acme\n"
    r = await api.call("POST", "/api/v1/prospects/import", users.admin, json={"csv": csv})
    assert r.json()["created"] == 1
    r = await api.call(
        "POST",
        "/api/v1/enrollments",
        users.admin,
        json={"cadence_id": cid, "mailbox_id": mailbox_id},
    )
    assert r.json()["enrolled"] == 1

    result = await run_workers(api.runtime, lambda: FRIDAY, once=True)
    assert result.sender.sent == 1

    r = await api.call("GET", "/api/v1/activity?kind=sent", users.admin)
    sent = r.json()["items"]
    assert len(sent) == 1 and "step 1 sent" in sent[0]["message"]
    message_id = sent[0]["data"]["message_id"]

    append_reply(
        rep,
        pat.address,
        message_id,
        "Re: Quick question, Pat",
        "Yes, Tuesday at 10 works for me.\n\n"
        f"On Fri, Nov 27, 2026 at 10:00 AM Rita Rep <{rep.address}> wrote:\n"
        "> Hi Pat, shall we talk?\n",
    )
    for _ in range(3):  # the reply is in the INBOX; one catch-up pass finds it
        result = await run_workers(api.runtime, lambda: FRIDAY, once=True)
        if result.inbound:
            break
        await asyncio.sleep(0.2)

    r = await api.call("GET", f"/api/v1/activity?cadence_id={cid}", users.admin)
    kinds = [a["kind"] for a in r.json()["items"]]
    assert kinds[0] == "replied" and "sent" in kinds
    reply = r.json()["items"][0]
    assert reply["reply_text"].strip() == "Yes, Tuesday at 10 works for me."

    r = await api.call("GET", f"/api/v1/enrollments?cadence_id={cid}", users.admin)
    assert r.json()["items"][0]["state"] == "replied"
    stats = (await api.call("GET", f"/api/v1/cadences/{cid}/stats", users.admin)).json()
    assert (stats["sent"], stats["replied"], stats["contacted"], stats["reply_rate"]) == (
        1, 1, 1, 1.0,
    )  # fmt: skip
    assert stats["steps"][0]["sent"] == 1 and stats["steps"][0]["replied"] == 1
    metrics = (await api.call("GET", "/metrics")).text
    assert "cadence_messages_sent_total 1" in metrics
    assert "cadence_replies_detected_total 1" in metrics
