"""``cadence enrollments list [--json]``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from cadence.engine.enrollments import list_enrollments, resume
from cadence.engine.runtime import clock_option_value, open_runtime
from cadence.errors import CadenceError


@click.group()
def enrollments() -> None:
    """Who is in which cadence, and where they stand."""


@enrollments.command("list")
@click.option("--cadence", "cadence_name", help="Only this cadence.")
@click.option("--state", help="Only this state (active, paused, finished, replied, ...).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(cadence_name: str | None, state: str | None, as_json: bool) -> None:
    """List enrollments: prospect, cadence, mailbox, state, step, next due time."""
    rows = asyncio.run(_rows(cadence_name, state))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("prospect", "cadence", "mailbox", "state", "step", "next due (UTC)", "reason")
    for r in rows:
        table.add_row(
            r["prospect"],
            r["cadence"],
            r["mailbox"],
            r["state"],
            str(r["step"]),
            r["next_due_at"] or "",
            r["reason"] or "",
        )
    Console().print(table)


async def _rows(cadence_name: str | None, state: str | None) -> list[dict[str, Any]]:
    async with open_runtime() as rt, rt.db.transaction() as s:
        return await list_enrollments(s, cadence=cadence_name, state=state)


@enrollments.command("resume")
@click.option("--cadence", "cadence_name", required=True)
@click.option("--prospect", "email", required=True)
@click.option(
    "--as-sent",
    "as_sent",
    is_flag=True,
    help="The held message did go out: count it as sent and move on.",
)
@click.option("--resend", is_flag=True, help="The held message did not go out: send it.")
@click.option("--now", hidden=True)
def resume_(cadence_name: str, email: str, as_sent: bool, resend: bool, now: str | None) -> None:
    """Resume a paused enrollment (a hold for a template problem or an unknown outcome)."""
    if as_sent and resend:
        raise click.UsageError("--as-sent or --resend, not both")
    outcome = "sent" if as_sent else "resend" if resend else None
    clock = clock_option_value(now)

    async def go() -> str:
        async with open_runtime() as rt, rt.db.transaction() as s:
            return await resume(
                s, cadence_name=cadence_name, email=email, now=clock(), unknown_outcome=outcome
            )

    try:
        state = asyncio.run(go())
    except CadenceError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        raise SystemExit(1) from None
    click.echo(f"{email} in {cadence_name!r}: {state}.")
