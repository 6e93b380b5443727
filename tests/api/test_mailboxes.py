"""Mailboxes through the API against the Dovecot test bed: check (the JSON of `cadence check
--json`), connect (refused with the check's code when it fails), pause/resume, health, the IT
report; and nobody else's mailbox is visible."""

from __future__ import annotations

from collections.abc import Callable

from cadence.testing.fixtures import TestMailbox

from .conftest import Api, Users
from .helpers import connection_body, store_mailbox


async def test_check_connect_pause_resume_health_report(
    api: Api, users: Users, new_mailbox: Callable[..., TestMailbox]
) -> None:
    rep = new_mailbox("rep")
    r = await api.call("POST", "/api/v1/mailboxes/check", users.admin, json=connection_body(rep))
    assert r.status_code == 200, r.text
    report = r.json()
    assert set(report) == {"ok", "checks"} and report["ok"] is True
    assert {c["status"] for c in report["checks"]} <= {"pass", "warn", "info"}
    for c in report["checks"]:
        assert set(c) == {"id", "service", "status", "code", "message", "hint", "detail"}
    assert any(c["code"] == "imap_uidplus" or "UIDPLUS" in c["message"] for c in report["checks"])

    # A wrong password: refused with the check's own code, message and the whole report.
    bad = connection_body(rep, password="wrong password")
    r = await api.call("POST", "/api/v1/mailboxes", users.admin, json=bad)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "imap_auth_failed"
    assert error["message"].startswith("Mailbox not connected:")
    assert error["detail"]["check"]["ok"] is False
    listed = await api.call("GET", "/api/v1/mailboxes", users.admin)
    assert listed.json()["total"] == 0

    r = await api.call(
        "POST",
        "/api/v1/mailboxes",
        users.admin,
        json=connection_body(rep, display_name="Rita Rep", timezone="Europe/Paris", daily_cap=20),
    )
    assert r.status_code == 201, r.text
    box = r.json()
    assert box["address"] == rep.address and box["status"] == "active"
    assert box["daily_cap"] == 20 and box["timezone"] == "Europe/Paris"
    assert "password" not in r.text and rep.password not in r.text
    mailbox_id = box["id"]

    r = await api.call("POST", f"/api/v1/mailboxes/{mailbox_id}/pause", users.admin)
    assert r.json()["status"] == "paused"
    r = await api.call("POST", f"/api/v1/mailboxes/{mailbox_id}/pause", users.admin)
    assert r.json()["status"] == "paused"
    r = await api.call("GET", "/api/v1/mailboxes?status=paused", users.admin)
    assert [m["id"] for m in r.json()["items"]] == [mailbox_id]
    r = await api.call("POST", f"/api/v1/mailboxes/{mailbox_id}/resume", users.admin)
    assert r.json()["status"] == "active"
    r = await api.call("POST", f"/api/v1/mailboxes/{mailbox_id}/resume", users.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_paused"

    r = await api.call("GET", f"/api/v1/mailboxes/{mailbox_id}/health", users.admin)
    health = r.json()
    assert health["status"] == "active" and health["daily_cap"] == 20
    assert health["watcher"]["state"] == "not_running"

    r = await api.call("GET", f"/api/v1/mailboxes/{mailbox_id}/report", users.admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert rep.address in r.text

    r = await api.call("POST", f"/api/v1/mailboxes/{mailbox_id}/check", users.admin)
    assert r.json()["ok"] is True

    # Alice sees none of it, and may not point the server at a CA file of its disk.
    for path in ("", "/health", "/report"):
        r = await api.call("GET", f"/api/v1/mailboxes/{mailbox_id}{path}", users.alice)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "unknown_mailbox"
    for action in ("pause", "resume", "check"):
        r = await api.call("POST", f"/api/v1/mailboxes/{mailbox_id}/{action}", users.alice)
        assert r.status_code == 404, action
    assert (await api.call("GET", "/api/v1/mailboxes", users.alice)).json()["total"] == 0
    r = await api.call("POST", "/api/v1/mailboxes", users.alice, json=connection_body(rep))
    assert r.status_code == 409 and r.json()["error"]["code"] == "mailbox_exists"
    other = new_mailbox("other")
    r = await api.call("POST", "/api/v1/mailboxes", users.alice, json=connection_body(other))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_users_see_and_change_only_their_mailboxes(api: Api, users: Users) -> None:
    a = await store_mailbox(api.runtime, users.alice_id, "alice-box@example.com")
    b = await store_mailbox(api.runtime, users.bob_id, "bob-box@example.com")
    cli = await store_mailbox(api.runtime, None, "cli-box@example.com")

    r = await api.call("GET", "/api/v1/mailboxes", users.alice)
    assert [m["id"] for m in r.json()["items"]] == [a]
    assert (await api.call("GET", f"/api/v1/mailboxes/{b}", users.alice)).status_code == 404
    assert (await api.call("POST", f"/api/v1/mailboxes/{b}/pause", users.alice)).status_code == 404
    assert (await api.call("POST", f"/api/v1/mailboxes/{a}/pause", users.alice)).status_code == 200
    assert (await api.call("GET", f"/api/v1/mailboxes/{cli}", users.bob)).status_code == 404

    # The admin sees every mailbox, the CLI's (no owner) included; pagination works.
    r = await api.call("GET", "/api/v1/mailboxes?limit=2", users.admin)
    page = r.json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    r = await api.call("GET", "/api/v1/mailboxes?limit=2&offset=2", users.admin)
    assert [m["id"] for m in r.json()["items"]] == [cli]
    r = await api.call("GET", "/api/v1/mailboxes?limit=0", users.admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = await api.call("GET", f"/api/v1/mailboxes/{b}", users.admin)
    assert r.json()["owner_id"] == users.bob_id
