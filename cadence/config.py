"""One typed Settings class for the whole application, read from ``CADENCE_*`` variables.

Protocol code (``cadence.mail``) never imports this module: it takes plain values, so the
same code serves the CLI, the API, the workers and the tests.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    # Public egress ranges of this deployment, shown to IT admins for their allow-lists:
    # CADENCE_EGRESS_ADDRESSES="203.0.113.16/28,198.51.100.7".
    egress_addresses: Annotated[list[str], NoDecode] = Field(default_factory=list)
    timeout: float = 20.0

    @field_validator("egress_addresses", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def sqlite_path(self) -> Path:
        return self.home / "cadence.db"

    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
