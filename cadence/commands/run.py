"""``cadence run [--once]``: the worker - mailbox watchers (reply tracking), the scheduler and
sender, webhook delivery.  Stops cleanly on SIGTERM.  ``--once`` catches every mailbox up,
does what is due now, delivers queued webhook events, and exits."""

from __future__ import annotations

import asyncio
import json

import click

from cadence.engine.runtime import clock_option_value, open_runtime
from cadence.engine.scheduling import Clock
from cadence.workers.watcher import WorkersReport, run_workers


@click.command()
@click.option("--once", is_flag=True, help="Catch up every mailbox, do what is due now, exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON at the end.")
@click.option(
    "--now", hidden=True, help="Pretend it is this time (ISO 8601); implies a fixed clock."
)
def run(once: bool, as_json: bool, now: str | None) -> None:
    """Watch the mailboxes for replies and send the cadences' steps when they are due."""
    clock = clock_option_value(now)
    result = asyncio.run(_run(once, clock))
    report = result.sender
    counts: dict[str, int] = {
        k: getattr(report, k)
        for k in ("sent", "bounced", "retried", "held", "deferred", "recovered", "unknown")
    }
    counts["inbound"] = sum(result.inbound.values())
    counts["quarantined"] = result.inbound.get("quarantined", 0)
    if as_json:
        click.echo(json.dumps(counts))
    else:
        click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))
    failed = {m: e for m, e in result.synced.items() if e}
    for mailbox_id, error in failed.items():
        click.echo(f"mailbox {mailbox_id}: could not check for replies: {error}", err=True)


async def _run(once: bool, clock: Clock) -> WorkersReport:
    async with open_runtime() as rt:
        return await run_workers(rt, clock, once=once)
