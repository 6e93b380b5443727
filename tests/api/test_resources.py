"""Cadences, prospects, enrollments, activity and statistics through the API, and the rule
that user A can neither read nor change user B's rows."""

from __future__ import annotations

from typing import Any

from .conftest import Api, Users
from .helpers import store_mailbox

CADENCE: dict[str, Any] = {
    "name": "intro",
    "description": "first touch",
    "steps": [
        {
            "type": "email",
            "subject": "Quick question, {{ first_name }}",
            "body": "Hi {{ first_name | default('there') }}, ...",
            "window": {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"},
        },
        {
            "type": "email",
            "delay": {"business_days": 2},
            "reply_in_thread": True,
            "body": "Following up on my note below.",
        },
    ],
}

CSV = (
    "email,first_name,last_name,company,timezone,plan\n"
    "pat@example.org,Pat,Jones,Acme,Europe/Paris,gold\n"
    "sam@example.org,,Smith,Initech,America/New_York,\n"
)


async def test_cadence_crud_preview_and_rules(api: Api, users: Users) -> None:
    r = await api.call("POST", "/api/v1/cadences", users.alice, json=CADENCE)
    assert r.status_code == 201, r.text
    cadence = r.json()
    assert [s["position"] for s in cadence["steps"]] == [0, 1]
    assert cadence["steps"][0]["window_days"] == "mon,tue,wed,thu,fri"
    assert cadence["steps"][1]["delay_business_days"] == 2
    cid = cadence["id"]

    # The same rules as `cadence cadence apply`: a first step cannot reply in a thread.
    bad = {**CADENCE, "name": "bad", "steps": [{**CADENCE["steps"][1], "subject": "s"}]}
    r = await api.call("POST", "/api/v1/cadences", users.alice, json=bad)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_cadence"
    assert "first step cannot reply" in r.json()["error"]["message"]
    r = await api.call("POST", "/api/v1/cadences", users.bob, json=CADENCE)
    assert r.status_code == 409 and r.json()["error"]["code"] == "cadence_exists"
    bad_syntax = {**CADENCE, "name": "x", "steps": [{"subject": "{{ oops", "body": "b"}]}
    r = await api.call("POST", "/api/v1/cadences", users.alice, json=bad_syntax)
    assert r.status_code == 400

    updated = {**CADENCE, "name": "intro v2", "steps": CADENCE["steps"][:1]}
    r = await api.call("PUT", f"/api/v1/cadences/{cid}", users.alice, json=updated)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "intro v2" and len(r.json()["steps"]) == 1
    r = await api.call("PUT", f"/api/v1/cadences/{cid}", users.alice, json=CADENCE)
    assert len(r.json()["steps"]) == 2
    r = await api.call("GET", f"/api/v1/cadences/{cid}/steps", users.alice)
    assert [s["type"] for s in r.json()] == ["email", "email"]
    r = await api.call("GET", "/api/v1/cadences?name=intr", users.alice)
    assert r.json()["total"] == 1

    r = await api.call("POST", "/api/v1/prospects/import", users.alice, json={"csv": CSV})
    pat = (await api.call("GET", "/api/v1/prospects?q=pat", users.alice)).json()["items"][0]
    sam = (await api.call("GET", "/api/v1/prospects?q=sam", users.alice)).json()["items"][0]
    r = await api.call(
        "POST", f"/api/v1/cadences/{cid}/preview", users.alice, json={"prospect_id": pat["id"]}
    )
    preview = r.json()
    assert preview["held"] is False and preview["subject"] == "Quick question, Pat"
    assert preview["text"].startswith("Hi Pat, ...")
    assert preview["to"] == "Pat Jones <pat@example.org>"
    r = await api.call(
        "POST",
        f"/api/v1/cadences/{cid}/preview",
        users.alice,
        json={"prospect_id": pat["id"], "step": 2},
    )
    assert r.json()["subject"] == "Re: Quick question, Pat"
    assert r.json()["text"].startswith("Following up")
    # Sam has no first name: the step would be held, with the reason.
    r = await api.call(
        "POST", f"/api/v1/cadences/{cid}/preview", users.alice, json={"prospect_id": sam["id"]}
    )
    assert r.json()["held"] is True and "first_name" in r.json()["reason"]
    r = await api.call(
        "POST",
        f"/api/v1/cadences/{cid}/preview",
        users.alice,
        json={"prospect_id": pat["id"], "step": 3},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_step"

    r = await api.call("DELETE", f"/api/v1/cadences/{cid}", users.alice)
    assert r.status_code == 204
    assert (await api.call("GET", f"/api/v1/cadences/{cid}", users.alice)).status_code == 404


async def test_prospects_import_reports_each_row_and_crud(api: Api, users: Users) -> None:
    broken = "email,first_name,timezone\nnot-an-address,Pat,UTC\nok@example.org,Ok,Mars/Olympus\n"
    r = await api.call("POST", "/api/v1/prospects/import", users.alice, json={"csv": broken})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "import_rejected"
    rows = {(e["line"], e["column"]) for e in error["detail"]["errors"]}
    assert rows == {(2, "email"), (3, "timezone")}
    assert (await api.call("GET", "/api/v1/prospects", users.alice)).json()["total"] == 0

    r = await api.call("POST", "/api/v1/prospects/import", users.alice, json={"csv": CSV})
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "rows": 2, "created": 2, "updated": 0, "errors": []}
    r = await api.call(
        "POST",
        "/api/v1/prospects/import-file",
        users.alice,
        files={"file": ("p.csv", CSV.encode(), "text/csv")},
    )
    assert r.json()["updated"] == 2 and r.json()["created"] == 0

    r = await api.call("GET", "/api/v1/prospects?company=Acme", users.alice)
    pat = r.json()["items"][0]
    assert pat["custom_fields"] == {"plan": "gold"} and pat["timezone"] == "Europe/Paris"

    r = await api.call(
        "POST",
        "/api/v1/prospects",
        users.alice,
        json={"email": "New@Example.org", "first_name": "New", "custom_fields": {"tier": "a"}},
    )
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["email"] == "new@example.org" and new["custom_fields"] == {"tier": "a"}
    r = await api.call("POST", "/api/v1/prospects", users.alice, json={"email": "new@example.org"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "prospect_exists"
    r = await api.call("POST", "/api/v1/prospects", users.alice, json={"email": "nope"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "import_rejected"

    r = await api.call(
        "PATCH", f"/api/v1/prospects/{new['id']}", users.alice, json={"company": "Globex"}
    )
    assert r.json()["company"] == "Globex" and r.json()["first_name"] == "New"
    r = await api.call(
        "PATCH", f"/api/v1/prospects/{new['id']}", users.alice, json={"timezone": "Nowhere/City"}
    )
    assert r.status_code == 400
    r = await api.call("DELETE", f"/api/v1/prospects/{new['id']}", users.alice)
    assert r.status_code == 204
    assert (await api.call("GET", "/api/v1/prospects", users.alice)).json()["total"] == 2

    # Bob cannot take over Alice's prospects by importing the same addresses.
    r = await api.call("POST", "/api/v1/prospects/import", users.bob, json={"csv": CSV})
    assert r.status_code == 422
    assert {e["line"] for e in r.json()["error"]["detail"]["errors"]} == {2, 3}
    assert "another user" in r.json()["error"]["detail"]["errors"][0]["message"]


async def test_enrollments_stats_activity_and_isolation(api: Api, users: Users) -> None:
    box_a = await store_mailbox(api.runtime, users.alice_id, "alice-box@example.com")
    box_b = await store_mailbox(api.runtime, users.bob_id, "bob-box@example.com")
    cid = (await api.call("POST", "/api/v1/cadences", users.alice, json=CADENCE)).json()["id"]
    await api.call("POST", "/api/v1/prospects/import", users.alice, json={"csv": CSV})
    bob_cadence = (
        await api.call("POST", "/api/v1/cadences", users.bob, json={**CADENCE, "name": "bob's"})
    ).json()["id"]
    bob_csv = "email,first_name\nbea@example.org,Bea\n"
    await api.call("POST", "/api/v1/prospects/import", users.bob, json={"csv": bob_csv})
    alice_prospects = (await api.call("GET", "/api/v1/prospects", users.alice)).json()["items"]
    pat_id = alice_prospects[0]["id"]

    # Alice cannot send from Bob's mailbox, and Bob cannot enroll Alice's prospects.
    r = await api.call(
        "POST", "/api/v1/enrollments", users.alice, json={"cadence_id": cid, "mailbox_id": box_b}
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_mailbox"
    r = await api.call(
        "POST",
        "/api/v1/enrollments",
        users.bob,
        json={"cadence_id": bob_cadence, "mailbox_id": box_b, "prospect_ids": [pat_id]},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_prospect"
    r = await api.call(
        "POST", "/api/v1/enrollments", users.bob, json={"cadence_id": cid, "mailbox_id": box_b}
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_cadence"

    # Without prospect_ids: all of Alice's prospects (not Bob's).
    r = await api.call(
        "POST", "/api/v1/enrollments", users.alice, json={"cadence_id": cid, "mailbox_id": box_a}
    )
    assert r.status_code == 201 and r.json() == {"enrolled": 2, "already": 0, "do_not_contact": 0}
    r = await api.call(
        "POST", "/api/v1/enrollments", users.alice, json={"cadence_id": cid, "mailbox_id": box_a}
    )
    assert r.json()["already"] == 2
    r = await api.call("GET", f"/api/v1/enrollments?cadence_id={cid}", users.alice)
    rows = r.json()["items"]
    assert [(e["prospect"], e["state"], e["step"]) for e in rows] == [
        ("pat@example.org", "active", 1),
        ("sam@example.org", "active", 1),
    ]
    eid = rows[0]["id"]

    r = await api.call("POST", f"/api/v1/enrollments/{eid}/pause", users.alice)
    assert r.json()["state"] == "paused" and "paused by alice@example.com" in r.json()["reason"]
    r = await api.call("GET", "/api/v1/enrollments?state=paused", users.alice)
    assert [e["id"] for e in r.json()["items"]] == [eid]
    r = await api.call("POST", f"/api/v1/enrollments/{eid}/resume", users.alice)
    assert r.json()["state"] == "active"
    r = await api.call("POST", f"/api/v1/enrollments/{eid}/resume", users.alice)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_paused"

    # Bob: none of Alice's rows can be read or changed.
    forbidden = [
        ("GET", f"/api/v1/cadences/{cid}", None),
        ("PUT", f"/api/v1/cadences/{cid}", CADENCE),
        ("DELETE", f"/api/v1/cadences/{cid}", None),
        ("GET", f"/api/v1/cadences/{cid}/stats", None),
        ("GET", f"/api/v1/cadences/{cid}/steps", None),
        ("POST", f"/api/v1/cadences/{cid}/preview", {"prospect_id": pat_id}),
        ("GET", f"/api/v1/prospects/{pat_id}", None),
        ("PATCH", f"/api/v1/prospects/{pat_id}", {"company": "Bob's now"}),
        ("DELETE", f"/api/v1/prospects/{pat_id}", None),
        ("GET", f"/api/v1/enrollments/{eid}", None),
        ("POST", f"/api/v1/enrollments/{eid}/pause", None),
        ("POST", f"/api/v1/enrollments/{eid}/resume", None),
        ("POST", f"/api/v1/enrollments/{eid}/stop", None),
        ("GET", f"/api/v1/mailboxes/{box_a}", None),
    ]
    for method, url, body in forbidden:
        r = await api.call(method, url, users.bob, json=body)
        assert r.status_code == 404, (method, url, r.text)
        assert r.json()["error"]["code"].startswith("unknown_"), (method, url)
    assert (await api.call("GET", "/api/v1/enrollments", users.bob)).json()["total"] == 0
    assert (await api.call("GET", "/api/v1/prospects", users.bob)).json()["total"] == 1
    assert (await api.call("GET", "/api/v1/cadences", users.bob)).json()["total"] == 1
    # ... and nothing changed.
    assert (await api.call("GET", f"/api/v1/enrollments/{eid}", users.alice)).json()["state"] == (
        "active"
    )
    assert (await api.call("GET", f"/api/v1/prospects/{pat_id}", users.alice)).json()[
        "company"
    ] == "Acme"
    # The admin sees Alice's enrollments.
    assert (await api.call("GET", "/api/v1/enrollments", users.admin)).json()["total"] == 2

    r = await api.call("POST", f"/api/v1/enrollments/{eid}/stop", users.alice)
    assert r.json()["state"] == "stopped" and r.json()["next_due_at"] is None
    r = await api.call("POST", f"/api/v1/enrollments/{eid}/stop", users.alice)
    assert r.status_code == 409

    stats = (await api.call("GET", f"/api/v1/cadences/{cid}/stats", users.alice)).json()
    assert stats["enrolled"] == 2 and stats["active"] == 1 and stats["sent"] == 0
    assert [s["step"] for s in stats["steps"]] == [1, 2] and stats["reply_rate"] == 0.0

    r = await api.call("GET", "/api/v1/activity", users.alice)
    assert r.status_code == 200 and r.json()["total"] == 0
    r = await api.call("GET", "/api/v1/activity?kind=NOT-A-KIND", users.alice)
    assert r.status_code == 422


async def test_healthz_metrics_webhooks(api: Api, users: Users) -> None:
    r = await api.call("GET", "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await api.call("GET", "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in (
        "cadence_messages_sent_total 0",
        "cadence_replies_detected_total 0",
        "cadence_queue_depth 0",
        "# TYPE cadence_watcher_state gauge",
    ):
        assert name in r.text

    hook = {"url": "https://hooks.example.com/cadence", "events": ["enrollment.replied"]}
    r = await api.call("POST", "/api/v1/webhooks", users.alice, json=hook)
    assert r.status_code == 403
    r = await api.call("POST", "/api/v1/webhooks", users.admin, json=hook)
    assert r.status_code == 201 and len(r.json()["secret"]) == 64
    hook_id = r.json()["id"]
    r = await api.call("GET", "/api/v1/webhooks", users.admin)
    assert [h["id"] for h in r.json()] == [hook_id] and r.json()[0]["secret"] is None
    r = await api.call(
        "POST", "/api/v1/webhooks", users.admin, json={**hook, "events": ["no.such"]}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_webhook_event"
    assert (await api.call("DELETE", f"/api/v1/webhooks/{hook_id}", users.admin)).status_code == 204
    assert (await api.call("DELETE", f"/api/v1/webhooks/{hook_id}", users.admin)).status_code == 404
