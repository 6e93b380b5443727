"""The dashboard over HTTP (no browser): first run, sign-in, CSRF, every page renders for its
user only; the browser tests (test_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import re

from .conftest import PASSWORD, SETUP_TOKEN, Api, make_users
from .helpers import store_mailbox


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def test_first_run_sign_in_csrf_and_pages(sqlite_api: Api) -> None:
    api = sqlite_api
    c = api.client
    r = await c.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = await c.get("/login")
    assert "not set up yet" in r.text  # no user: the page points at the setup link
    r = await c.get(f"/setup?token={SETUP_TOKEN}")
    assert 'name="token"' in r.text and '<label for="email">' in r.text
    r = await c.post("/setup", data={"token": "wrong", "email": "a@example.com",
                                     "password": PASSWORD, "password2": PASSWORD})  # fmt: skip
    assert "not valid" in r.text
    first = {"token": SETUP_TOKEN, "email": "admin@example.com", "name": "Ada"}
    r = await c.post("/setup", data={**first, "password": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/mailboxes/connect"
    assert "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=lax" in r.headers["set-cookie"].lower()

    for path in ("/", "/mailboxes", "/mailboxes/connect", "/cadences", "/cadences/new",
                 "/prospects", "/activity"):  # fmt: skip
        r = await c.get(path)
        assert r.status_code == 200, path
        assert "Sign out" in r.text and 'lang="en"' in r.text
        assert "Content-Security-Policy" in r.headers
    page = await c.get("/prospects")
    token = _csrf(page.text)

    # A form without the CSRF token is refused, and nothing is stored.
    csv = "email,first_name,company\npat@example.org,Pat,Acme\n"
    r = await c.post("/prospects/import", data={"csv": csv})
    assert r.status_code == 400 and "this form expired" in r.text
    r = await c.post("/prospects/import", data={"csv": csv, "csrf": token})
    assert "Imported 1 prospect" in r.text and "pat@example.org" in r.text
    r = await c.post("/prospects/import", data={"csv": "email\nbad\n", "csrf": token})
    assert "Nothing was imported" in r.text and "not a valid address" in r.text

    form = {
        "csrf": token, "name": "intro", "description": "", "step_count": "1", "s0_type": "email",
        "s0_subject": "Hello {{ first_name }}", "s0_body": "Hi {{ first_name }}",
    }  # fmt: skip
    r = await c.post("/cadences/save", data={**form, "add_step": "1"})
    assert 'id="s1_body"' in r.text  # a second, blank step to fill in
    r = await c.post("/cadences/save", data=form)
    assert r.status_code == 303
    cadence_url = r.headers["location"].split("?")[0]
    r = await c.get(cadence_url)
    assert "Funnel" in r.text and "Enroll" in r.text
    pid = re.search(r'<option value="(\d+)"[^>]*>Pat', r.text)
    assert pid
    r = await c.get(f"{cadence_url}?preview={pid.group(1)}")
    assert "Hello Pat" in r.text and "Hi Pat" in r.text
    bad = {**form, "name": "", "s0_subject": "{{ broken"}
    r = await c.post("/cadences/save", data=bad)
    assert 'role="alert"' in r.text

    # Another user sees none of it.
    users = await make_users_after_setup(api)
    other = api.client.__class__(transport=api.client._transport, base_url="http://testserver")
    async with other:
        r = await other.post("/login", data={"email": "alice@example.com", "password": PASSWORD})
        assert r.status_code == 303
        r = await other.get("/prospects")
        assert "pat@example.org" not in r.text
        r = await other.get(cadence_url)
        assert r.status_code == 303  # not hers: back to the list
        r = await other.get("/cadences")
        assert "intro" not in r.text
    assert users


async def make_users_after_setup(api: Api) -> bool:
    r = await api.call("POST", "/api/v1/auth/login",
                       json={"email": "admin@example.com", "password": PASSWORD})  # fmt: skip
    admin = r.json()["token"]
    r = await api.call("POST", "/api/v1/users", admin,
                       json={"email": "alice@example.com", "password": PASSWORD})  # fmt: skip
    return r.status_code == 201


async def test_mailbox_page_shows_health_and_login_errors(sqlite_api: Api) -> None:
    users = await make_users(sqlite_api)
    await store_mailbox(sqlite_api.runtime, users.alice_id, "alice-box@example.com")
    c = sqlite_api.client
    r = await c.post("/login", data={"email": "alice@example.com", "password": "wrong-wrong"})
    assert r.status_code == 200 and "wrong email or password" in r.text
    r = await c.post("/login", data={"email": "alice@example.com", "password": PASSWORD,
                                     "next": "//evil.example/"})  # fmt: skip
    assert r.headers["location"] == "/"
    r = await c.get("/mailboxes")
    assert "alice-box@example.com" in r.text and "not running" in r.text
    r = await c.post("/mailboxes/1/pause", data={"csrf": _csrf(r.text)})
    r = await c.get("/mailboxes")
    assert "Resume" in r.text
    # The session cookie reads the API (GET) but cannot write through it.
    assert (await c.get("/api/v1/mailboxes")).json()["total"] == 1
    assert (await c.post("/api/v1/mailboxes/1/resume")).status_code == 401
    r = await c.post("/logout", data={"csrf": _csrf((await c.get("/")).text)})
    assert r.status_code == 303
    assert (await c.get("/")).status_code == 303
