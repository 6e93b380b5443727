"""What every command needs: the settings, the store (migrated to head), the secret box."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import click

from cadence.config import Settings, get_settings
from cadence.engine.scheduling import Clock, system_clock
from cadence.store.db import Database, open_database
from cadence.store.secrets import SecretBox


@dataclass
class Runtime:
    settings: Settings
    db: Database
    secrets: SecretBox


@asynccontextmanager
async def open_runtime(settings: Settings | None = None) -> AsyncIterator[Runtime]:
    settings = settings or get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    db = await open_database(settings.effective_database_url())
    try:
        yield Runtime(settings, db, SecretBox.from_settings(settings.secret_key, settings.home))
    finally:
        await db.close()


def clock_option_value(now: str | None) -> Clock:
    """``--now`` (hidden; tests and dry runs): a fixed clock.  Else the system clock."""
    if not now:
        return system_clock
    try:
        fixed = datetime.fromisoformat(now.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO date-time: {now!r}", param_hint="--now") from None
    if fixed.tzinfo is None:
        fixed = fixed.replace(tzinfo=UTC)
    return lambda: fixed
