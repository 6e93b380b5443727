"""Fixtures for the API and dashboard tests: an app around a fresh store (SQLite and, for the
tests that ask for ``db_url``, PostgreSQL too — the fixtures of tests/engine are reused), an
HTTP client, and users with API tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine.conftest import db_url, pg_database_url  # noqa: F401  (tests/engine fixtures reused)
from fastapi import FastAPI

from cadence.api.app import create_app
from cadence.config import Settings
from cadence.engine.runtime import Runtime, open_runtime

SETUP_TOKEN = "test-setup-token"
PASSWORD = "correct horse battery"


@dataclass
class Api:
    """An app, its runtime and a client; ``as_(token)`` sends that user's token."""

    app: FastAPI
    runtime: Runtime
    client: httpx.AsyncClient

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, url: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers.update(self.auth(token))
        return await self.client.request(method, url, headers=headers, **kwargs)


def make_settings(home: Path, url: str) -> Settings:
    return Settings(home=home, database_url=url, secret_key="api-tests-secret-key", dns=None)


async def _api(home: Path, url: str) -> AsyncIterator[Api]:
    async with open_runtime(make_settings(home, url)) as runtime:
        app = create_app(runtime, setup_token=SETUP_TOKEN)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(app, runtime, client)


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:  # noqa: F811
    """On SQLite and on PostgreSQL."""
    async for value in _api(tmp_path / "home", db_url):
        yield value


@pytest.fixture
async def sqlite_api(tmp_path: Path) -> AsyncIterator[Api]:
    async for value in _api(tmp_path / "home", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"):
        yield value


@dataclass
class Users:
    admin: str
    alice: str
    bob: str
    alice_id: int
    bob_id: int


async def make_users(api: Api) -> Users:
    r = await api.call(
        "POST",
        "/api/v1/setup",
        json={"setup_token": SETUP_TOKEN, "email": "admin@example.com", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    admin = r.json()["token"]
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {}
    for name in ("alice", "bob"):
        r = await api.call(
            "POST",
            "/api/v1/users",
            admin,
            json={"email": f"{name}@example.com", "password": PASSWORD, "name": name.title()},
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
        r = await api.call(
            "POST",
            "/api/v1/auth/login",
            json={"email": f"{name}@example.com", "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        tokens[name] = r.json()["token"]
    return Users(admin, tokens["alice"], tokens["bob"], ids["alice"], ids["bob"])


@pytest.fixture
async def users(api: Api) -> Users:
    return await make_users(api)
