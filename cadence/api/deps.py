"""What every endpoint needs: the application's state, who is asking, pagination."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeSerializer

from cadence.engine import accounts
from cadence.engine.accounts import AuthError, ForbiddenError, Principal
from cadence.engine.runtime import Runtime
from cadence.engine.scheduling import Clock, system_clock
from cadence.mail.diagnose import CheckReport
from cadence.store.secrets import KEY_FILE_NAME, load_or_create_key_file

SESSION_COOKIE = "cadence_session"


class WatcherHealth(Protocol):
    """What the mailbox watchers (issue 5) expose: their state per mailbox."""

    def health(self) -> Any: ...


@dataclass
class AppState:
    runtime: Runtime
    clock: Clock = system_clock
    # The one-time first-run token (printed by `cadence serve`); None once an admin exists.
    setup_token: str | None = None
    watchers: WatcherHealth | None = None
    # The last check of each mailbox connected through the API, for the IT report page.
    check_reports: dict[int, CheckReport] = field(default_factory=dict)
    serializer: URLSafeSerializer = field(init=False)
    started_at: datetime = field(default_factory=system_clock)

    def __post_init__(self) -> None:
        self.serializer = URLSafeSerializer(signing_key(self.runtime), salt="cadence-session")

    def now(self) -> datetime:
        return self.clock()

    def keep_report(self, mailbox_id: int, report: CheckReport) -> None:
        """Keep a mailbox's last check for its IT report, without the password."""
        from dataclasses import replace

        from cadence.mail.endpoints import Credentials

        creds = report.request.credentials
        safe = replace(report.request, credentials=Credentials(creds.username) if creds else None)
        self.check_reports[mailbox_id] = replace(report, request=safe)

    def rescan_watchers(self) -> None:
        """A mailbox was added, paused or resumed: the watchers re-read the list now."""
        rescan = getattr(self.watchers, "rescan", None)
        if callable(rescan):
            rescan()

    def sign_session(self, token: str) -> str:
        return str(self.serializer.dumps(token))

    def unsign_session(self, value: str) -> str | None:
        try:
            token = self.serializer.loads(value)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None


def signing_key(runtime: Runtime) -> bytes:
    """The cookie-signing key: derived from the installation's secret key (never the key
    itself), so rotating CADENCE_SECRET_KEY signs everybody out."""
    settings = runtime.settings
    if settings.secret_key:
        base = settings.secret_key.encode()
    else:
        base = load_or_create_key_file(settings.home / KEY_FILE_NAME)
    return hashlib.sha256(b"cadence-session-signing\x00" + base).digest()


def new_setup_token() -> str:
    return secrets.token_urlsafe(24)


def app_state(request: Request) -> AppState:
    state = request.app.state.cadence
    assert isinstance(state, AppState)
    return state


State = Annotated[AppState, Depends(app_state)]


bearer = HTTPBearer(
    auto_error=False,
    description="A per-user API token: POST /api/v1/auth/login or /api/v1/auth/tokens.",
)


async def principal(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Bearer token (API clients), or the browser's session cookie for reads."""
    async with state.runtime.db.transaction() as s:
        if credentials is not None and credentials.credentials.strip():
            api_token = credentials.credentials.strip()
            user = await accounts.user_for_api_token(s, api_token, state.now())
            return Principal.of(user)
        cookie = request.cookies.get(SESSION_COOKIE)
        token = state.unsign_session(cookie) if cookie else None
        if token and request.method in ("GET", "HEAD"):
            found = await accounts.session_user(s, token, state.now())
            if found is not None:
                return Principal.of(found[0])
    raise AuthError("sign in first: this endpoint needs an API token")


Who = Annotated[Principal, Depends(principal)]


async def admin(who: Who) -> Principal:
    if not who.is_admin:
        raise ForbiddenError("only an admin can do this")
    return who


Admin = Annotated[Principal, Depends(admin)]


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int


def paging(
    limit: Annotated[int, Query(ge=1, le=500, description="Rows per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")] = 0,
) -> Paging:
    return Paging(limit, offset)


Pages = Annotated[Paging, Depends(paging)]
