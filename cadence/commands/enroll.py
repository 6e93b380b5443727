"""``cadence enroll --cadence NAME --mailbox ADDRESS (--all | --prospect EMAIL ...)``."""

from __future__ import annotations

import asyncio
from datetime import datetime

import click

from cadence.engine.enrollments import EnrollResult
from cadence.engine.enrollments import enroll as enroll_service
from cadence.engine.runtime import clock_option_value, open_runtime
from cadence.errors import CadenceError


@click.command()
@click.option("--cadence", "cadence_name", required=True, help="The cadence's name.")
@click.option("--mailbox", "mailbox_address", required=True, help="Send from this mailbox.")
@click.option("--all", "all_", is_flag=True, help="Every prospect not enrolled yet.")
@click.option("--prospect", "emails", multiple=True, help="A prospect's email; repeatable.")
@click.option("--now", hidden=True, help="Pretend it is this time (ISO 8601).")
def enroll(
    cadence_name: str, mailbox_address: str, all_: bool, emails: tuple[str, ...], now: str | None
) -> None:
    """Enroll prospects in a cadence, sent from one mailbox."""
    if all_ == bool(emails):
        raise click.UsageError("give --all or at least one --prospect (not both)")
    clock = clock_option_value(now)
    try:
        result = asyncio.run(
            _enroll(cadence_name, mailbox_address, None if all_ else list(emails), clock())
        )
    except CadenceError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        raise SystemExit(1) from None
    click.echo(
        f"Enrolled {result.enrolled} prospect(s) in {cadence_name!r}"
        + (f"; {result.already} already enrolled" if result.already else "")
        + (f"; {result.do_not_contact} skipped (do not contact)" if result.do_not_contact else "")
        + "."
    )


async def _enroll(
    cadence_name: str, mailbox: str, emails: list[str] | None, now: datetime
) -> EnrollResult:
    async with open_runtime() as rt, rt.db.transaction() as s:
        return await enroll_service(
            s, cadence_name=cadence_name, mailbox_address=mailbox, emails=emails, now=now
        )
