"""First run, sign-in for scripts, API tokens, users."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, status

from cadence.api.deps import Admin, State, Who
from cadence.api.schemas import (
    LoginIn,
    NewTokenOut,
    SetupIn,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from cadence.engine import accounts
from cadence.errors import CadenceError
from cadence.store.repositories import AccountRepository

router = APIRouter(tags=["accounts"])


@router.post("/setup", status_code=status.HTTP_201_CREATED)
async def setup(body: SetupIn, state: State) -> NewTokenOut:
    """First run: create the first admin with the one-time token `cadence serve` printed."""
    expected = state.setup_token
    if expected is None or not hmac.compare_digest(body.setup_token.encode(), expected.encode()):
        raise CadenceError(
            "the setup token is wrong or was already used",
            code="bad_setup_token",
            hint="use the URL `cadence serve` printed at start",
        )
    async with state.runtime.db.transaction() as s:
        user = await accounts.create_first_admin(
            s,
            email=body.email,
            password=body.password,
            name=body.name,
            team_name=body.team,
            now=state.now(),
        )
        row, token = await accounts.issue_api_token(s, user, "setup", state.now())
        out = NewTokenOut(token=token, id=row.id, user=UserOut.model_validate(user))
    state.setup_token = None
    return out


@router.post("/auth/login", status_code=status.HTTP_201_CREATED)
async def login(body: LoginIn, state: State) -> NewTokenOut:
    """Trade an email and password for a new API token (shown once)."""
    async with state.runtime.db.transaction() as s:
        user = await accounts.authenticate(s, body.email, body.password)
        row, token = await accounts.issue_api_token(s, user, body.token_name, state.now())
        return NewTokenOut(token=token, id=row.id, user=UserOut.model_validate(user))


@router.get("/me")
async def me(who: Who, state: State) -> UserOut:
    async with state.runtime.db.transaction() as s:
        user = await AccountRepository(s).user(who.user_id)
        assert user is not None
        return UserOut.model_validate(user)


@router.get("/auth/tokens")
async def list_tokens(who: Who, state: State) -> list[TokenOut]:
    async with state.runtime.db.transaction() as s:
        rows = await AccountRepository(s).tokens_of(who.user_id)
        return [TokenOut.model_validate(r) for r in rows]


@router.post("/auth/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenIn, who: Who, state: State) -> NewTokenOut:
    async with state.runtime.db.transaction() as s:
        user = await AccountRepository(s).user(who.user_id)
        assert user is not None
        row, token = await accounts.issue_api_token(s, user, body.name, state.now())
        return NewTokenOut(token=token, id=row.id, user=UserOut.model_validate(user))


@router.delete("/auth/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: int, who: Who, state: State) -> None:
    async with state.runtime.db.transaction() as s:
        await accounts.revoke_api_token(s, who, token_id, state.now())


@router.get("/users")
async def list_users(who: Admin, state: State) -> list[UserOut]:
    async with state.runtime.db.transaction() as s:
        return [UserOut.model_validate(u) for u in await AccountRepository(s).users()]


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, who: Admin, state: State) -> UserOut:
    """Admins add users; a user without a team joins the admin's team."""
    async with state.runtime.db.transaction() as s:
        team_name = body.team
        if team_name is None and who.team_id is not None:
            from cadence.store.account_models import Team

            team = await s.get(Team, who.team_id)
            team_name = team.name if team else None
        user = await accounts.create_user(
            s,
            email=body.email,
            password=body.password,
            name=body.name,
            is_admin=body.is_admin,
            team_name=team_name,
            now=state.now(),
        )
        return UserOut.model_validate(user)
