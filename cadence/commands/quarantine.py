"""``cadence quarantine list [--json]`` and ``cadence quarantine retry ID|--all``: inbound
messages the reply tracker could not process, kept with their bytes and error."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from cadence.engine.replies import ReplyTracker
from cadence.engine.runtime import clock_option_value, open_runtime
from cadence.engine.scheduling import Clock
from cadence.store.tracking_repositories import QuarantineRepository


@click.group()
def quarantine() -> None:
    """Inbound messages that could not be processed."""


@quarantine.command("list")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved ones.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(include_resolved: bool, as_json: bool) -> None:
    """List quarantined messages with their error."""
    rows = asyncio.run(_rows(include_resolved))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No quarantined messages.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "mailbox", "folder/uid", "size", "error", "since", "retried")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["mailbox"],
            f"{r['folder']}/{r['uid']}",
            str(r["size"] if r["size"] is not None else ""),
            f"{r['error_code']}: {r['error_message']}",
            r["created_at"],
            r["retried_at"] or "",
        )
    Console().print(table)


async def _rows(include_resolved: bool) -> list[dict[str, Any]]:
    async with open_runtime() as rt, rt.db.transaction() as s:
        rows = await QuarantineRepository(s).listing(include_resolved)
        return [
            {
                "id": q.id,
                "mailbox": address,
                "folder": q.folder,
                "uid": q.uid,
                "size": q.size,
                "truncated": q.truncated,
                "error_code": q.error_code,
                "error_message": q.error_message,
                "attempts": q.attempts,
                "created_at": q.created_at.isoformat(),
                "retried_at": q.retried_at.isoformat() if q.retried_at else None,
                "resolved": q.resolved,
            }
            for q, address in rows
        ]


@quarantine.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Retry every unresolved message.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--now", hidden=True, help="Pretend it is this time (ISO 8601).")
def retry(ids: tuple[int, ...], retry_all: bool, as_json: bool, now: str | None) -> None:
    """Process quarantined messages again (after a fix or an upgrade).  Exit 1 when any is
    still failing."""
    if not ids and not retry_all:
        raise click.UsageError("give quarantine ids, or --all")
    results = asyncio.run(_retry(list(ids), retry_all, clock_option_value(now)))
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for r in results:
            state = "resolved" if r["resolved"] else "still quarantined"
            click.echo(f"{r['id']}: {state} - {r['result']}")
        if not results:
            click.echo("No quarantined messages.")
    if any(not r["resolved"] for r in results):
        sys.exit(1)


async def _retry(ids: list[int], retry_all: bool, clock: Clock) -> list[dict[str, Any]]:
    async with open_runtime() as rt:
        if retry_all:
            async with rt.db.transaction() as s:
                ids = await QuarantineRepository(s).open_ids()
        tracker = ReplyTracker(rt.db, clock)
        out: list[dict[str, Any]] = []
        for quarantine_id in ids:
            resolved, result = await tracker.retry_quarantined(quarantine_id)
            out.append({"id": quarantine_id, "resolved": resolved, "result": result})
        return out
