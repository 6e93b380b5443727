"""``cadence run [--once]``: the worker that schedules and sends.  Stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json

import click

from cadence.engine.runtime import clock_option_value, open_runtime
from cadence.engine.sending import PassReport
from cadence.workers.sender import run_sender


@click.command()
@click.option("--once", is_flag=True, help="Do what is due now, then exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON at the end.")
@click.option(
    "--now", hidden=True, help="Pretend it is this time (ISO 8601); implies a fixed clock."
)
def run(once: bool, as_json: bool, now: str | None) -> None:
    """Send the cadences' steps when they are due, from each rep's mailbox."""
    clock = clock_option_value(now)
    report = asyncio.run(_run(once, clock))
    counts = {
        k: getattr(report, k)
        for k in ("sent", "bounced", "retried", "held", "deferred", "recovered", "unknown")
    }
    if as_json:
        click.echo(json.dumps(counts))
    else:
        click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))


async def _run(once: bool, clock: object) -> PassReport:
    async with open_runtime() as rt:
        return await run_sender(rt, clock, once=once)  # type: ignore[arg-type]
