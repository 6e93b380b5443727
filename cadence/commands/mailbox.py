"""``cadence mailbox add|list``: add a mailbox only after it passes ``cadence check``."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from cadence.commands.check import build_request, connection_options, print_checklist, read_password
from cadence.engine.mailboxes import MailboxSpec, save_mailbox
from cadence.engine.runtime import open_runtime
from cadence.errors import CadenceError
from cadence.mail.diagnose import CheckReport, CheckRequest, run_check


@click.group()
def mailbox() -> None:
    """Mailboxes Cadence sends from."""


@mailbox.command("add")
@connection_options
@click.option("--name", "display_name", help="The sender's name shown to prospects.")
@click.option(
    "--daily-cap",
    type=int,
    default=50,
    show_default=True,
    help="At most this many messages per day.",
)
@click.option(
    "--min-gap",
    type=int,
    default=90,
    show_default=True,
    help="Seconds between two sends, at least.",
)
@click.option(
    "--jitter",
    type=int,
    default=60,
    show_default=True,
    help="Up to this many random seconds added to each gap.",
)
@click.option(
    "--timezone",
    "tz",
    default="UTC",
    show_default=True,
    help="The mailbox's time zone (IANA name).",
)
@click.option("--work-days", default="mon,tue,wed,thu,fri", show_default=True)
@click.option(
    "--work-hours",
    default="09:00-17:00",
    show_default=True,
    help="Default send window for steps without one, in the prospect's zone.",
)
@click.option("--holiday", "holidays", multiple=True, help="YYYY-MM-DD; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def add(
    email_address: str,
    imap_host: str | None,
    imap_port: int,
    imap_security: str | None,
    smtp_host: str | None,
    smtp_port: int,
    smtp_security: str | None,
    username: str | None,
    password_stdin: bool,
    ca_file: str | None,
    timeout: float,
    source_address: str | None,
    display_name: str | None,
    daily_cap: int,
    min_gap: int,
    jitter: int,
    tz: str,
    work_days: str,
    work_hours: str,
    holidays: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check a mailbox and, if it passes, store it (its password encrypted)."""
    password = read_password(password_stdin)
    if not password:
        raise click.UsageError("no password: set CADENCE_PASSWORD or use --password-stdin")
    if not imap_host or not smtp_host:
        raise click.UsageError("give both --imap-host and --smtp-host")
    work_from, _, work_to = work_hours.partition("-")
    request = build_request(
        email_address=email_address,
        imap_host=imap_host,
        imap_port=imap_port,
        imap_security=imap_security,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=smtp_security,
        username=username,
        password=password,
        ca_file=ca_file,
        timeout=timeout,
        source_address=source_address,
    )
    report = asyncio.run(run_check(request))
    if not report.ok:
        _refuse(report, as_json)
    assert request.imap is not None and request.smtp is not None
    spec = MailboxSpec(
        address=email_address,
        username=username or email_address,
        password=password,
        imap=request.imap,
        smtp=request.smtp,
        display_name=display_name,
        ca_file=ca_file,
        daily_cap=daily_cap,
        min_gap_seconds=min_gap,
        jitter_seconds=jitter,
        timezone=tz,
        work_days=work_days,
        work_from=work_from or "09:00",
        work_to=work_to or "17:00",
        holidays=holidays,
    )
    try:
        created = asyncio.run(_save(spec))
    except CadenceError as exc:
        raise click.UsageError(f"{exc.message} ({exc.hint})") from None
    verb = "added" if created else "updated"
    if as_json:
        click.echo(json.dumps({"ok": True, "mailbox": spec.address, "created": created}))
    else:
        click.echo(f"Mailbox {spec.address} {verb}: it passed every check.")


def _refuse(report: CheckReport, as_json: bool) -> None:
    first = report.failures[0] if report.failures else None
    if as_json:
        click.echo(json.dumps({**report.as_dict(), "added": False}, indent=2))
    else:
        print_checklist(report)
        if first is not None:
            click.echo(f"Mailbox not added: {first.message}", err=True)
    sys.exit(1)


async def _save(spec: MailboxSpec) -> bool:
    async with open_runtime() as rt, rt.db.transaction() as s:
        _, created = await save_mailbox(s, spec, rt.secrets)
        return created


@mailbox.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json: bool) -> None:
    """The mailboxes, their limits and status."""
    rows = asyncio.run(_list())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        reason = f" ({r['status_reason']})" if r["status_reason"] else ""
        click.echo(f"{r['address']}  {r['status']}{reason}  cap {r['daily_cap']}/day")


async def _list() -> list[dict[str, object]]:
    from cadence.store.repositories import MailboxRepository

    async with open_runtime() as rt, rt.db.transaction() as s:
        return [
            {
                "address": m.address,
                "status": m.status,
                "status_reason": m.status_reason,
                "daily_cap": m.daily_cap,
                "timezone": m.timezone,
                "server_files_sent": m.server_files_sent,
            }
            for m in await MailboxRepository(s).all()
        ]


__all__ = ["CheckRequest", "mailbox"]
