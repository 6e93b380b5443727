"""``cadence preview --cadence NAME --prospect EMAIL [--step N]``: render a step as it would
be sent, without sending or storing anything."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage

import click

from cadence.engine.runtime import clock_option_value, open_runtime
from cadence.engine.sending import SendingEngine
from cadence.engine.templates import TemplateError
from cadence.errors import CadenceError, UsageError
from cadence.store.models import Enrollment
from cadence.store.repositories import CadenceRepository, MailboxRepository, ProspectRepository


@click.command()
@click.option("--cadence", "cadence_name", required=True)
@click.option("--prospect", "email", required=True, help="The prospect's email address.")
@click.option("--step", "step_no", type=int, default=1, show_default=True, help="1-based.")
@click.option("--mailbox", "mailbox_address", help="Default: the only mailbox.")
@click.option("--raw", is_flag=True, help="Print the whole MIME message.")
@click.option("--now", hidden=True)
def preview(
    cadence_name: str,
    email: str,
    step_no: int,
    mailbox_address: str | None,
    raw: bool,
    now: str | None,
) -> None:
    """Show what a step of a cadence would send to one prospect."""
    try:
        data = asyncio.run(_render(cadence_name, email, step_no, mailbox_address, now))
    except TemplateError as exc:
        click.echo(f"This step would be held: {exc.message}", err=True)
        click.echo(f"Hint: {exc.hint}", err=True)
        raise SystemExit(1) from None
    except CadenceError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        raise SystemExit(1) from None
    if raw:
        click.echo(data.decode("utf-8", "replace"))
        return
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    for header in ("From", "To", "Subject", "In-Reply-To"):
        if msg[header]:
            click.echo(f"{header}: {msg[header]}")
    body = msg.get_body(("plain",))
    click.echo("")
    click.echo(body.get_content() if isinstance(body, EmailMessage) else "")


async def _render(
    cadence_name: str, email: str, step_no: int, mailbox_address: str | None, now: str | None
) -> bytes:
    clock = clock_option_value(now)
    async with open_runtime() as rt, rt.db.sessions() as s:
        cadence = await CadenceRepository(s).by_name(cadence_name)
        if cadence is None:
            raise UsageError(f"no cadence named {cadence_name!r}")
        if not 1 <= step_no <= len(cadence.steps):
            raise UsageError(f"{cadence_name!r} has steps 1 to {len(cadence.steps)}")
        prospect = await ProspectRepository(s).by_email(email)
        if prospect is None:
            raise UsageError(f"no prospect {email}")
        mailboxes = await MailboxRepository(s).all()
        if mailbox_address:
            mailbox = await MailboxRepository(s).by_address(mailbox_address)
        else:
            mailbox = mailboxes[0] if len(mailboxes) == 1 else None
        if mailbox is None:
            raise UsageError("say which mailbox with --mailbox")
        enrollment = Enrollment(prospect=prospect, cadence=cadence, mailbox=mailbox)
        engine = SendingEngine(rt.db, rt.secrets, clock)
        step = cadence.steps[step_no - 1]
        outbound = await engine.compose(s, mailbox, enrollment, step, clock())
        await s.rollback()
        if outbound is None:
            raise UsageError("this step replies in a thread and has no subject of its own")
        return outbound.raw
