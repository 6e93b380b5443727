"""Mailboxes: discover settings, check, connect (refused when the check fails), pause, resume,
health, and the IT admin's printable report."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import HTMLResponse

from cadence.api.deps import Pages, State, Who
from cadence.api.errors import not_found
from cadence.api.schemas import (
    CheckIn,
    ConnectionIn,
    DiscoverIn,
    MailboxHealth,
    MailboxIn,
    MailboxOut,
    Page,
)
from cadence.api.services import Connection, check_request, connect_mailbox, discover_settings
from cadence.engine import listings
from cadence.engine.mailboxes import connection_for
from cadence.errors import UsageError
from cadence.mail.diagnose import CheckReport, CheckRequest, run_check
from cadence.store.models import MailboxStatus
from cadence.store.repositories import MailboxRepository

router = APIRouter(prefix="/mailboxes", tags=["mailboxes"])
MailboxId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _connection(body: ConnectionIn) -> Connection:
    return Connection(
        email=body.email,
        password=body.password,
        username=body.username,
        imap_host=body.imap_host,
        imap_port=body.imap_port,
        imap_security=body.imap_security,
        smtp_host=body.smtp_host,
        smtp_port=body.smtp_port,
        smtp_security=body.smtp_security,
        ca_file=body.ca_file,
        timeout=body.timeout,
    )


@router.post("/discover")
async def discover(body: DiscoverIn, who: Who, state: State) -> dict[str, Any]:
    """Find a mailbox's IMAP and SMTP settings: the JSON of `cadence discover --json`."""
    result = await discover_settings(body.email, state.runtime, body.timeout)
    return result.as_dict()


@router.post("/check")
async def check(body: CheckIn, who: Who, state: State) -> dict[str, Any]:
    """Judge every requirement: the JSON of `cadence check --json` (200 whether it passes)."""
    request = check_request(_connection(body), state.runtime, who, send_test=body.send_test)
    report = await run_check(request)
    return report.as_dict()


@router.post("", status_code=status.HTTP_201_CREATED)
async def connect(body: MailboxIn, who: Who, state: State) -> MailboxOut:
    """Check the mailbox and store it as yours; a failing mailbox is refused (422) with the
    check's code, message and hint, and the whole check in `error.detail.check`."""
    limits = body.model_dump(
        include={
            "display_name",
            "daily_cap",
            "min_gap_seconds",
            "jitter_seconds",
            "timezone",
            "work_days",
            "work_from",
            "work_to",
            "holidays",
        }
    )
    mailbox, report, _ = await connect_mailbox(state.runtime, who, _connection(body), limits=limits)
    state.keep_report(mailbox.id, report)
    state.rescan_watchers()
    return MailboxOut.model_validate(mailbox)


@router.get("")
async def list_mailboxes(
    who: Who,
    state: State,
    pages: Pages,
    status_: Annotated[
        MailboxStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
) -> Page[MailboxOut]:
    async with state.runtime.db.transaction() as s:
        found = await listings.mailboxes(
            s, who, status=status_, limit=pages.limit, offset=pages.offset
        )
        return Page(
            items=[MailboxOut.model_validate(m) for m in found.items],
            total=found.total,
            limit=pages.limit,
            offset=pages.offset,
        )


@router.get("/{mailbox_id}")
async def get_mailbox(mailbox_id: MailboxId, who: Who, state: State) -> MailboxOut:
    async with state.runtime.db.transaction() as s:
        mailbox = await listings.mailbox(s, who, mailbox_id)
        if mailbox is None:
            raise not_found("mailbox", mailbox_id)
        return MailboxOut.model_validate(mailbox)


async def _set_status(
    state: State, who: Who, mailbox_id: int, to: MailboxStatus, reason: str | None
) -> MailboxOut:
    async with state.runtime.db.transaction() as s:
        mailbox = await listings.mailbox(s, who, mailbox_id)
        if mailbox is None:
            raise not_found("mailbox", mailbox_id)
        if to is MailboxStatus.ACTIVE and mailbox.status != MailboxStatus.PAUSED:
            raise UsageError(
                f"the mailbox is {mailbox.status}, not paused",
                code="not_paused",
                hint="a mailbox that needs attention is fixed by connecting it again",
            )
        mailbox.status = to
        mailbox.status_reason = reason
        await s.flush()
        out = MailboxOut.model_validate(mailbox)
    state.rescan_watchers()
    return out


@router.post("/{mailbox_id}/pause")
async def pause_mailbox(mailbox_id: MailboxId, who: Who, state: State) -> MailboxOut:
    """Stop sending from this mailbox until it is resumed (enrollments wait)."""
    return await _set_status(state, who, mailbox_id, MailboxStatus.PAUSED, "paused by a user")


@router.post("/{mailbox_id}/resume")
async def resume_mailbox(mailbox_id: MailboxId, who: Who, state: State) -> MailboxOut:
    return await _set_status(state, who, mailbox_id, MailboxStatus.ACTIVE, None)


@router.get("/{mailbox_id}/health")
async def mailbox_health(mailbox_id: MailboxId, who: Who, state: State) -> MailboxHealth:
    """Sending status, today's count against the cap, and the reply watcher's state."""
    async with state.runtime.db.transaction() as s:
        mailbox = await listings.mailbox(s, who, mailbox_id)
        if mailbox is None:
            raise not_found("mailbox", mailbox_id)
        sent_today = await MailboxRepository(s).sends_since(
            mailbox.id, state.now() - timedelta(days=1)
        )
        return MailboxHealth(
            mailbox_id=mailbox.id,
            status=mailbox.status,
            status_reason=mailbox.status_reason,
            sent_today=sent_today,
            daily_cap=mailbox.daily_cap,
            watcher=watcher_health(state, mailbox.id, mailbox.address),
        )


def watcher_health(state: State, mailbox_id: int, address: str) -> dict[str, Any]:
    """The reply watcher's state for this mailbox (``WatcherService.health()``)."""
    if state.watchers is None:
        return {"state": "not_running", "message": "no mailbox watcher runs in this process"}
    health = state.watchers.health()
    found = health.get(mailbox_id) if isinstance(health, dict) else None
    if found is None:
        return {"state": "not_watched", "message": "the watcher has not picked it up yet"}
    now = time.monotonic()
    since = getattr(found, "since", None)
    last_sync = getattr(found, "last_sync_at", None)
    return {
        "state": str(getattr(found, "state", "unknown")),
        "seconds_in_state": round(now - since, 1) if isinstance(since, float) else None,
        "last_sync_seconds_ago": round(now - last_sync, 1)
        if isinstance(last_sync, float)
        else None,
        "last_error": getattr(found, "last_error", None),
        "last_error_code": getattr(found, "last_error_code", None),
        "messages_seen": getattr(found, "messages_seen", 0),
        "reconnects": getattr(found, "reconnects", 0),
    }


async def _recheck(state: State, who: Who, mailbox_id: int) -> CheckReport:
    async with state.runtime.db.transaction() as s:
        mailbox = await listings.mailbox(s, who, mailbox_id)
        if mailbox is None:
            raise not_found("mailbox", mailbox_id)
        conn = connection_for(mailbox, state.runtime.secrets, state.runtime.settings.timeout)
    request = CheckRequest(
        email=conn.address,
        imap=conn.imap,
        smtp=conn.smtp,
        credentials=conn.credentials,
        options=conn.options,
        egress_addresses=tuple(state.runtime.settings.egress_addresses),
    )
    report = await run_check(request)
    state.keep_report(mailbox_id, report)
    return report


@router.post("/{mailbox_id}/check")
async def recheck_mailbox(mailbox_id: MailboxId, who: Who, state: State) -> dict[str, Any]:
    """Check a connected mailbox again with its stored password (`cadence check --json`)."""
    return (await _recheck(state, who, mailbox_id)).as_dict()


@router.get("/{mailbox_id}/report", response_class=HTMLResponse)
async def it_report(mailbox_id: MailboxId, who: Who, state: State) -> HTMLResponse:
    """The IT admin's printable page for this mailbox (from its last check)."""
    from cadence.web.it_report import render_html

    report = state.check_reports.get(mailbox_id)
    async with state.runtime.db.transaction() as s:
        if await listings.mailbox(s, who, mailbox_id) is None:
            raise not_found("mailbox", mailbox_id)
    if report is None:
        report = await _recheck(state, who, mailbox_id)
    return HTMLResponse(render_html(report))
