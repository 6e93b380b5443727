"""One typed Settings class for the whole application, read from ``CADENCE_*`` variables.

Protocol code (``cadence.mail``) never imports this module: it takes plain values, so the
same code serves the CLI, the API, the workers and the tests.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "cadence"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CADENCE_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Where Cadence keeps its files.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file under home."
    )
    secret_key: str | None = Field(
        default=None, description="Key for secrets at rest; default: a generated 0600 key file."
    )
    # Network: a resolver "host:port" for discovery (tests point it at a local DNS server).
    dns: str | None = None
    # Public egress ranges of this deployment, shown to IT admins for their allow-lists.
    egress_addresses: list[str] = Field(default_factory=list)
    timeout: float = 20.0

    @property
    def sqlite_path(self) -> Path:
        return self.home / "cadence.db"

    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
