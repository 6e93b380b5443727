"""``cadence check``: does this mailbox meet Cadence's requirements, and what must change?

Exit status: 0 every requirement passes, 1 any fails, 2 usage error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from cadence.config import get_settings
from cadence.errors import CadenceError
from cadence.mail.diagnose import CheckReport, CheckRequest, CheckResult, run_check
from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint, Security

SECURITY = click.Choice([s.value for s in Security])


def connection_options(func: Any) -> Any:
    """The connection flags shared by ``cadence check`` and ``cadence mailbox add``."""
    options = [
        click.option("--email", "email_address", required=True, help="The mailbox's address."),
        click.option("--imap-host", help="IMAP server host name."),
        click.option("--imap-port", type=int, default=993, show_default=True),
        click.option("--imap-security", type=SECURITY,
                     help="tls or starttls (default: from the port; 993 tls, 143 starttls)."),
        click.option("--smtp-host", help="SMTP submission host name."),
        click.option("--smtp-port", type=int, default=587, show_default=True),
        click.option("--smtp-security", type=SECURITY,
                     help="tls or starttls (default: from the port; 465 tls, 587/25 starttls)."),
        click.option("--username", help="Login name (default: the email address)."),
        click.option("--password-stdin", is_flag=True,
                     help="Read the password from standard input (else CADENCE_PASSWORD, "
                     "else a prompt)."),
        click.option("--ca-file", type=click.Path(exists=True, dir_okay=False),
                     help="Also trust the CA certificates in this PEM file."),
        click.option("--timeout", type=float, default=20.0, show_default=True,
                     help="Seconds to wait for each network step."),
        click.option("--source-address", help="Connect from this local address.",
                     hidden=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def read_password(password_stdin: bool) -> str | None:
    """CADENCE_PASSWORD, --password-stdin, or a prompt on a terminal — never a flag."""
    if password_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        return value or None
    env = os.environ.get("CADENCE_PASSWORD")
    if env:
        return env
    if sys.stdin.isatty():
        value = click.prompt("Password", hide_input=True, default="", show_default=False)
        return str(value) or None
    return None


def build_request(
    *,
    email_address: str,
    imap_host: str | None,
    imap_port: int,
    imap_security: str | None,
    smtp_host: str | None,
    smtp_port: int,
    smtp_security: str | None,
    username: str | None,
    password: str | None,
    ca_file: str | None,
    timeout: float,
    source_address: str | None,
    send_test: bool = False,
) -> CheckRequest:
    if "@" not in email_address:
        raise click.UsageError(f"{email_address!r} is not an email address")
    imap = Endpoint.parse(imap_host, imap_port, imap_security) if imap_host else None
    smtp = Endpoint.parse(smtp_host, smtp_port, smtp_security) if smtp_host else None
    credentials = Credentials(username or email_address, password) if password else None
    egress = tuple(get_settings().egress_addresses)
    return CheckRequest(
        email=email_address,
        imap=imap,
        smtp=smtp,
        credentials=credentials,
        options=ConnectOptions(
            ca_file=ca_file,
            timeout=timeout,
            source_address=source_address,
            resolver=get_settings().dns,
        ),
        send_test=send_test,
        egress_addresses=egress,
    )


async def discover_endpoints(request: CheckRequest) -> CheckRequest:
    """Fill in the hosts the user did not give from discovery (issue: `cadence discover`)."""
    from cadence.mail import discovery
    found = await discovery.discover_for_check(
        request.email, request.options, dns=get_settings().dns
    )
    if found is None:
        return request
    imap, smtp = found
    return CheckRequest(
        email=request.email,
        imap=request.imap or imap,
        smtp=request.smtp or smtp,
        credentials=request.credentials,
        options=request.options,
        send_test=request.send_test,
        egress_addresses=request.egress_addresses,
    )


_SYMBOL = {"pass": "[green]✔ pass[/]", "fail": "[bold red]✘ FAIL[/]",
           "warn": "[yellow]! warn[/]", "info": "[blue]· info[/]"}


def print_checklist(report: CheckReport) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    for service in ("imap", "smtp"):
        rows = [c for c in report.checks if c.service == service]
        if not rows:
            continue
        console.print(f"\n[bold]{service.upper()}[/]")
        for c in rows:
            console.print(f"  {_SYMBOL[c.status]}  {c.message}", soft_wrap=True)
            if c.status in ("fail", "warn") and c.hint:
                console.print(f"           [dim]→ {c.hint}[/]", soft_wrap=True)
    verdict = (
        "[bold green]This mailbox meets Cadence's requirements.[/]"
        if report.ok
        else f"[bold red]{len(report.failures)} requirement(s) failed.[/]"
    )
    console.print(f"\n{verdict}  ({report.elapsed_s:.1f}s)")


@click.command()
@connection_options
@click.option("--send-test", is_flag=True,
              help="Send a message to the mailbox itself and see it arrive (then remove it).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the IT admin's report: FILE.html (printable) or FILE.txt.")
def check(
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
    send_test: bool,
    as_json: bool,
    report_path: str | None,
) -> None:
    """Check that a mailbox meets Cadence's requirements, and say what to fix."""
    password = read_password(password_stdin)
    request = build_request(
        email_address=email_address, imap_host=imap_host, imap_port=imap_port,
        imap_security=imap_security, smtp_host=smtp_host, smtp_port=smtp_port,
        smtp_security=smtp_security, username=username, password=password, ca_file=ca_file,
        timeout=timeout, source_address=source_address, send_test=send_test,
    )
    report = asyncio.run(_run(request))
    if report is None:
        raise click.UsageError(
            "No IMAP or SMTP host given and none could be discovered: pass --imap-host "
            "and/or --smtp-host."
        )
    if report_path:
        write_report(report, Path(report_path))
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        print_checklist(report)
        if report_path:
            click.echo(f"IT report written to {report_path}")
    sys.exit(0 if report.ok else 1)


async def _run(request: CheckRequest) -> CheckReport | None:
    if request.imap is None or request.smtp is None:
        with contextlib.suppress(CadenceError):
            request = await discover_endpoints(request)
    if request.imap is None and request.smtp is None:
        return None
    return await run_check(request)


def write_report(report: CheckReport, path: Path) -> None:
    from cadence.web.it_report import render_html, render_text

    if path.suffix.lower() in (".txt", ".text"):
        path.write_text(render_text(report), encoding="utf-8")
    else:
        path.write_text(render_html(report), encoding="utf-8")


__all__ = ["CheckResult", "build_request", "check", "connection_options", "read_password"]
