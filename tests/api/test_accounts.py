"""First run, tokens, users: who can do what."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from cadence.store.account_models import ApiToken, User

from .conftest import PASSWORD, SETUP_TOKEN, Api, Users, make_users


async def test_first_run_creates_one_admin_once(api: Api) -> None:
    r = await api.call("GET", "/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"

    bad = {"setup_token": "wrong", "email": "a@example.com", "password": PASSWORD}
    r = await api.call("POST", "/api/v1/setup", json=bad)
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_setup_token"

    weak = {"setup_token": SETUP_TOKEN, "email": "a@example.com", "password": "short"}
    r = await api.call("POST", "/api/v1/setup", json=weak)
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
    assert r.json()["error"]["hint"]

    good = {"setup_token": SETUP_TOKEN, "email": "Admin@Example.com", "password": PASSWORD}
    r = await api.call("POST", "/api/v1/setup", json=good)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert r.json()["user"]["is_admin"] is True
    me = await api.call("GET", "/api/v1/me", token)
    assert me.json()["email"] == "admin@example.com"

    # The token is single-use: a second setup is refused.
    r = await api.call("POST", "/api/v1/setup", json={**good, "email": "b@example.com"})
    assert r.status_code == 403


async def test_tokens_and_passwords_are_stored_hashed(api: Api, users: Users) -> None:
    async with api.runtime.db.transaction() as s:
        rows = list(await s.scalars(select(ApiToken)))
        stored = {r.token_hash for r in rows}
        people = list(await s.scalars(select(User)))
    assert hashlib.sha256(users.alice.encode()).hexdigest() in stored
    assert users.alice not in stored
    assert all(u.password_hash.startswith("scrypt$") for u in people)
    assert all(PASSWORD not in u.password_hash for u in people)


async def test_login_revoke_and_admin_only_user_creation(api: Api, users: Users) -> None:
    r = await api.call(
        "POST",
        "/api/v1/auth/login",
        json={"email": "alice@example.com", "password": "nope-nope-nope"},
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"

    r = await api.call("POST", "/api/v1/auth/tokens", users.alice, json={"name": "laptop"})
    assert r.status_code == 201
    extra, extra_id = r.json()["token"], r.json()["id"]
    listed = await api.call("GET", "/api/v1/auth/tokens", users.alice)
    assert "laptop" in [t["name"] for t in listed.json()]
    assert all("token" not in t for t in listed.json())

    # Bob cannot revoke Alice's token.
    r = await api.call("DELETE", f"/api/v1/auth/tokens/{extra_id}", users.bob)
    assert r.status_code == 404
    r = await api.call("DELETE", f"/api/v1/auth/tokens/{extra_id}", users.alice)
    assert r.status_code == 204
    r = await api.call("GET", "/api/v1/me", extra)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_token"

    r = await api.call(
        "POST",
        "/api/v1/users",
        users.alice,
        json={"email": "eve@example.com", "password": PASSWORD},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await api.call("GET", "/api/v1/users", users.admin)
    assert [u["email"] for u in r.json()] == [
        "admin@example.com",
        "alice@example.com",
        "bob@example.com",
    ]
    # Users join the admin's team.
    teams = {u["team_id"] for u in r.json()}
    assert len(teams) == 1 and None not in teams

    r = await api.call(
        "POST",
        "/api/v1/users",
        users.admin,
        json={"email": "alice@example.com", "password": PASSWORD},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "user_exists"


async def test_make_users_helper_is_repeatable_per_app(sqlite_api: Api) -> None:
    found = await make_users(sqlite_api)
    assert found.alice != found.bob and found.alice_id != found.bob_id


async def test_openapi_and_docs_are_served(api: Api) -> None:
    spec = (await api.call("GET", "/openapi.json")).json()
    assert (
        "/api/v1/mailboxes" in spec["paths"]
        and "/api/v1/cadences/{cadence_id}/stats" in spec["paths"]
    )
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "/login" not in spec["paths"]  # the dashboard is not part of the API
    docs = await api.call("GET", "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_accounts_migration_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    """0003 is the only head, and it can be undone and redone on SQLite."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect

    from cadence.store.db import alembic_config

    cfg = alembic_config()
    assert ScriptDirectory.from_config(cfg).get_heads() == ["0003_accounts"]
    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head")
    engine = create_engine(url)
    assert "owner_id" in {c["name"] for c in inspect(engine).get_columns("cadence")}
    command.downgrade(cfg, "-1")
    assert "app_user" not in inspect(engine).get_table_names()
    assert "owner_id" not in {c["name"] for c in inspect(engine).get_columns("mailbox")}
    command.upgrade(cfg, "head")
    assert {"app_user", "team", "api_token", "web_session"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
