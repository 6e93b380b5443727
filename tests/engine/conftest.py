"""Store fixtures for the engine tests: every test that asks for ``db`` runs twice, on SQLite
and on PostgreSQL (127.0.0.1:5432, user postgres).  PostgreSQL gets one throwaway database per
test session; each test starts from empty tables.  Under CI=true a missing PostgreSQL fails."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cadence.store.db import Database, open_database
from cadence.store.models import Base
from cadence.testing.fixtures import require_server

PG_ADMIN_DSN = os.environ.get(
    "CADENCE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"cadence_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, Exception) as exc:  # asyncpg raises its own errors and OSError
        require_server(f"PostgreSQL at 127.0.0.1:5432 ({exc})")
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://")

    async def migrate() -> None:
        db = await open_database(url)
        await db.close()

    asyncio.run(migrate())
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'cadence.db'}"
    url: str = request.getfixturevalue("pg_database_url")

    async def truncate() -> None:
        db = await open_database(url, migrate=False)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        await db.close()

    asyncio.run(truncate())
    return url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    yield database
    await database.close()
