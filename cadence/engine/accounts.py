"""Accounts: users, teams, API tokens and browser sessions; who may see which rows.

Passwords: scrypt (RFC 7914) through ``hashlib.scrypt`` with a 16-byte random salt; the
parameters are stored with the hash (``scrypt$n$r$p$salt$hash``) so they can be raised later.
Tokens: 32 random bytes, shown once; only their SHA-256 is stored.  Services never commit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from cadence.errors import CadenceError, UsageError
from cadence.store.account_models import ApiToken, Team, User, WebSession
from cadence.store.repositories import AccountRepository

# RFC 7914 section 2: N=2^14, r=8, p=1 is the interactive-login recommendation (16 MiB).
_N, _R, _P = 2**14, 8, 1
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
SESSION_TTL = timedelta(days=14)
TOKEN_PREFIX = "cad_"


class AuthError(CadenceError):
    code = "unauthenticated"
    hint = "send Authorization: Bearer <token> (create one with POST /api/v1/auth/tokens)"


class ForbiddenError(CadenceError):
    code = "forbidden"
    hint = "ask an admin of this Cadence"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# Verified against when the user does not exist, so timing does not tell who has an account.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is asking: admins see every row, others their own."""

    user_id: int
    team_id: int | None
    is_admin: bool
    email: str

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(user.id, user.team_id, user.is_admin, user.email)

    def owns(self, row: Any) -> bool:
        return self.is_admin or getattr(row, "owner_id", None) == self.user_id


_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])


def visible(stmt: _S, model: Any, who: Principal) -> _S:
    """Restrict a query on an owned model (Mailbox, Cadence, Prospect) to what ``who`` sees."""
    if who.is_admin:
        return stmt
    return stmt.where(model.owner_id == who.user_id)


def _check_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 320:
        raise UsageError(f"not an email address: {email!r}", code="bad_email")
    return email


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(
            f"the password is shorter than {MIN_PASSWORD} characters",
            code="weak_password",
            hint=f"use at least {MIN_PASSWORD} characters; a passphrase is easiest",
        )


async def count_users(session: AsyncSession) -> int:
    return await AccountRepository(session).count_users()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    name: str | None = None,
    is_admin: bool = False,
    team_name: str | None = None,
    now: datetime,
) -> User:
    email = _check_email(email)
    _check_password(password)
    repo = AccountRepository(session)
    if await repo.user_by_email(email) is not None:
        raise UsageError(f"a user {email} already exists", code="user_exists")
    team: Team | None = None
    if team_name:
        team = await repo.team_by_name(team_name.strip())
        if team is None:
            team = Team(name=team_name.strip(), created_at=now)
            session.add(team)
            await session.flush()
    user = User(
        email=email,
        name=(name or "").strip() or None,
        password_hash=hash_password(password),
        is_admin=is_admin,
        disabled=False,
        team_id=team.id if team else None,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def create_first_admin(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    name: str | None,
    team_name: str | None,
    now: datetime,
) -> User:
    """The first-run flow: allowed only while there is no user at all."""
    if await count_users(session) > 0:
        raise UsageError(
            "Cadence is already set up",
            code="already_set_up",
            hint="sign in, or ask an admin for an account",
        )
    return await create_user(
        session,
        email=email,
        password=password,
        name=name,
        is_admin=True,
        team_name=team_name or "Team",
        now=now,
    )


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    user = await AccountRepository(session).user_by_email(email.strip().lower())
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    if user is None or not ok or user.disabled:
        raise AuthError(
            "wrong email or password", code="bad_credentials", hint="check both and try again"
        )
    return user


async def issue_api_token(
    session: AsyncSession, user: User, name: str, now: datetime
) -> tuple[ApiToken, str]:
    token = new_token()
    row = ApiToken(
        user_id=user.id,
        name=name.strip()[:200],
        token_hash=token_hash(token),
        prefix=token[:10],
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row, token


async def user_for_api_token(session: AsyncSession, token: str, now: datetime) -> User:
    repo = AccountRepository(session)
    row = await repo.token_by_hash(token_hash(token))
    if row is None or row.revoked_at is not None:
        raise AuthError("this API token is not valid (unknown or revoked)", code="bad_token")
    user = await repo.user(row.user_id)
    if user is None or user.disabled:
        raise AuthError("this API token's user is disabled", code="bad_token")
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5):
        row.last_used_at = now  # not on every request: keeps reads from writing
    return user


async def revoke_api_token(
    session: AsyncSession, who: Principal, token_id: int, now: datetime
) -> None:
    row = await AccountRepository(session).token(token_id)
    if row is None or (row.user_id != who.user_id and not who.is_admin):
        raise UsageError(f"no API token {token_id}", code="unknown_token")
    row.revoked_at = row.revoked_at or now
    await session.flush()


async def start_session(session: AsyncSession, user: User, now: datetime) -> tuple[str, str]:
    """A browser session: returns (token for the cookie, CSRF token for forms)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session.add(
        WebSession(
            user_id=user.id,
            token_hash=token_hash(token),
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    await session.flush()
    return token, csrf


async def session_user(
    session: AsyncSession, token: str, now: datetime
) -> tuple[User, WebSession] | None:
    repo = AccountRepository(session)
    row = await repo.session_by_hash(token_hash(token))
    if row is None or row.expires_at <= now:
        return None
    user = await repo.user(row.user_id)
    if user is None or user.disabled:
        return None
    return user, row


async def end_session(session: AsyncSession, token: str) -> None:
    repo = AccountRepository(session)
    row = await repo.session_by_hash(token_hash(token))
    if row is not None:
        await session.delete(row)
        await session.flush()
