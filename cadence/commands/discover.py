"""``cadence discover ADDRESS``: find a mailbox's IMAP and SMTP settings, proven by probing.

Exit status: 0 a verified candidate was found (and, with a password, the login worked);
1 nothing verified (candidates may still be listed) or the login failed; 2 a usage error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import click

from cadence.config import Settings
from cadence.errors import CadenceError
from cadence.mail.autoconfig import DEFAULT_ISPDB_URL, IspdbCache
from cadence.mail.discovery import (
    Candidate,
    DiscoveryOptions,
    DiscoveryResult,
    password_allowed,
    verify_login,
)
from cadence.mail.discovery import (
    discover as run_discovery,
)
from cadence.mail.discovery_types import ProbeResult, ServerSetting


def _probe_line(setting: ServerSetting | None, probe: ProbeResult | None, label: str) -> str:
    if setting is None:
        return f"    {label}  (none found)"
    where = f"{setting.host}:{setting.port} {setting.security.value.upper()}"
    if probe is None:
        return f"    {label}  {where:<38} not probed"
    if probe.ok:
        bits = [probe.tls_version or "TLS"]
        if label == "IMAP":
            bits.append("UIDPLUS" if probe.uidplus else "UIDPLUS checked at login")
        if probe.auth_mechanisms:
            bits.append("AUTH " + " ".join(probe.auth_mechanisms))
        mark = "ok  " if probe.status == "ok" else "warn"
        text = f"    {label}  {where:<38} {mark} {', '.join(bits)}"
        if probe.status == "warn" and probe.message:
            text += f"\n          {probe.message}"
        return text
    return f"    {label}  {where:<38} FAIL [{probe.code}] {probe.message}"


def _render_text(result: DiscoveryResult, trust_hosts: tuple[str, ...]) -> str:
    lines = [f"Settings for {result.address} ({result.elapsed_s:.2f} s)", ""]
    if not result.candidates:
        lines.append("No settings found.")
    for n, c in enumerate(result.candidates, 1):
        state = "verified" if c.verified else "NOT verified"
        provider = f"  {c.provider}" if c.provider else ""
        also = f" (also: {', '.join(c.also_from)})" if c.also_from else ""
        lines.append(f"{n:>2}. [{state}] from {c.source}{also}{provider}")
        lines.append(_probe_line(c.imap, c.probe_imap, "IMAP"))
        lines.append(_probe_line(c.smtp, c.probe_smtp, "SMTP"))
        lines.append(f"    Username: {c.username}    Sign-in: {', '.join(c.auth) or '?'}")
        if c.url:
            lines.append(f"    From: {c.url}")
        if c.redirects:
            lines.append(f"    Redirected: {' -> '.join(c.redirects)}")
        if c.insecure_transport:
            lines.append(
                "    WARNING: this answer came over plain http; the password is sent only to "
                "hosts you confirm with --trust-host"
            )
        for note in c.notes:
            lines.append(f"    Note: {note}")
        for host in sorted({s.host for s in (c.imap, c.smtp) if s}):
            ok, why = password_allowed(c, host, result.domain, trust_hosts)
            if not ok:
                lines.append(f"    Password: not sent to {host} unless confirmed ({why})")
        if c.login:
            for service, outcome in c.login.items():
                status = outcome.get("status")
                msg = outcome.get("message", "")
                lines.append(f"    Login {service.upper()}: {status} {msg}".rstrip())
        lines.append("")
    failing = [s for s in result.sources if s.status in ("error", "timeout")]
    answered = [s.name for s in result.sources if s.status == "ok"]
    lines.append(f"Sources that answered: {', '.join(answered) or 'none'}")
    for s in failing:
        err = s.error or {}
        lines.append(f"  {s.name}: {s.status} [{err.get('code')}] {err.get('message', '')}")
    return "\n".join(lines)


def _read_password(password_env: str | None, login: bool) -> str | None:
    if password_env:
        value = os.environ.get(password_env)
        if not value:
            raise click.UsageError(f"the environment variable {password_env} is not set")
        return value
    if login:
        if not sys.stdin.isatty():
            raise click.UsageError("--login needs a terminal for the prompt, or --password-env")
        value = click.prompt("Password", hide_input=True, default="", show_default=False)
        return str(value) or None
    return None


def _confirm_hosts(result: DiscoveryResult, trust: list[str], interactive: bool) -> None:
    """On a terminal, ask before sending the password to a host that is not trusted yet."""
    best = result.best
    if best is None or not interactive:
        return
    for setting in (best.imap, best.smtp):
        if setting is None:
            continue
        ok, why = password_allowed(best, setting.host, result.domain, trust)
        if not ok and click.confirm(f"{why}.\nSend your password to {setting.host}?"):
            trust.append(setting.host)


@click.command()
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (all candidates, best first).")
@click.option(
    "--dns",
    metavar="HOST:PORT",
    help="Ask this DNS server (default: CADENCE_DNS, else the system's resolver).",
)
@click.option(
    "--timeout",
    type=float,
    metavar="SECONDS",
    default=10.0,
    show_default=True,
    help="Total time budget in seconds, sources and probes together.",
)
@click.option(
    "--password-env",
    metavar="VAR",
    help="Log into the best candidate with the password in this environment variable.",
)
@click.option("--login", is_flag=True, help="Log into the best candidate (password prompt).")
@click.option(
    "--trust-host",
    "trust_hosts",
    multiple=True,
    metavar="HOST",
    help="Allow the password to go to HOST (outside your domain or found over plain http).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Also trust the CA certificates in this PEM file.",
)
@click.option(
    "--ispdb-url",
    envvar="CADENCE_ISPDB_URL",
    default=DEFAULT_ISPDB_URL,
    show_default=True,
    help="Base URL of the ISP database ('' to skip it).",
)
@click.option("--no-probe", is_flag=True, help="List what the sources say without connecting.")
@click.option(
    "--all",
    "complete",
    is_flag=True,
    help="Wait for every source (within the budget) instead of stopping at the first "
    "verified answer no pending source could outrank.",
)
@click.option("--source-address", hidden=True, help="Connect from this local address.")
def discover(
    address: str,
    as_json: bool,
    dns: str | None,
    timeout: float,
    password_env: str | None,
    login: bool,
    trust_hosts: tuple[str, ...],
    ca_file: str | None,
    ispdb_url: str,
    no_probe: bool,
    complete: bool,
    source_address: str | None,
) -> None:
    """Find the IMAP and SMTP settings of ADDRESS, each proven by connecting to it."""
    settings = Settings()
    if timeout <= 0:
        raise click.UsageError("--timeout must be positive")
    password = _read_password(password_env, login)
    options = DiscoveryOptions(
        timeout=timeout,
        dns=dns or settings.dns,
        ca_file=ca_file,
        ispdb_url=ispdb_url or None,
        ispdb_cache=IspdbCache(Path(settings.home) / "cache" / "ispdb"),
        probe=not no_probe,
        complete=complete,
        source_address=source_address,
        password=password,  # Exchange Autodiscover on the user's own domain may need it
    )
    try:
        result = asyncio.run(run_discovery(address, options=options))
    except CadenceError as exc:
        if as_json:
            click.echo(json.dumps({"address": address, "error": exc.as_dict()}, indent=2))
        else:
            click.echo(f"Error: {exc.message}\nHint: {exc.hint}", err=True)
        sys.exit(2)
    login_ok = True
    trust = list(trust_hosts)
    if password is not None and result.best is not None:
        _confirm_hosts(result, trust, interactive=sys.stdin.isatty() and not as_json)
        outcome = asyncio.run(verify_login(result, password, options=options, trust_hosts=trust))
        login_ok = outcome is not None and all(o.get("status") == "ok" for o in outcome.values())
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        click.echo(_render_text(result, tuple(trust)))
    best: Candidate | None = result.best
    sys.exit(0 if best is not None and best.verified and login_ok else 1)
