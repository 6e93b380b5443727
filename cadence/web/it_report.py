"""The IT admin's report: what Cadence requires, what was found for this mailbox, what to change.

A sales rep hands this page to IT.  It is rendered from the same :class:`CheckReport` as the
terminal checklist and ``--json``, as printable HTML (one A4/Letter page where it fits) or as
plain text for a ticket or an email.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from cadence.mail.diagnose import CheckReport, CheckResult, Status

_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Requirement:
    title: str
    required: str
    found: str
    status: Status | None  # None: not checked
    action: str


def _first(report: CheckReport, *ids: str) -> CheckResult | None:
    for check_id in ids:
        c = report.get(check_id)
        if c is not None and c.status == "fail":
            return c
    for check_id in ids:
        c = report.get(check_id)
        if c is not None and c.status == "warn":
            return c
    for check_id in ids:
        c = report.get(check_id)
        if c is not None:
            return c
    return None


def _status_of(report: CheckReport, *ids: str) -> tuple[Status | None, CheckResult | None]:
    c = _first(report, *ids)
    return (c.status if c else None), c


def _action(check: CheckResult | None) -> str:
    """What to do about a requirement: the hint of a failed or doubtful check."""
    return check.hint if check is not None and check.status in ("fail", "warn") else ""


def requirements(report: CheckReport) -> list[Requirement]:
    req = report.request
    rows: list[Requirement] = []
    hosts = []
    if req.imap:
        hosts.append(f"IMAP {req.imap.host}")
    if req.smtp:
        hosts.append(f"SMTP {req.smtp.host}")
    st, c = _status_of(report, "imap.dns", "smtp.dns", "imap.connect", "smtp.connect")
    rows.append(
        Requirement(
            "Server host names",
            "The IMAP and SMTP servers' names, reachable from Cadence",
            "; ".join(hosts) or "none given",
            st,
            _action(c),
        )
    )
    st, c = _status_of(report, "imap.login", "smtp.login")
    user = req.credentials.username if req.credentials else req.email
    rows.append(
        Requirement(
            "Login and password",
            "The mailbox's login (often the email address) and password",
            user,
            st,
            _action(c),
        )
    )
    if req.smtp:
        st, c = _status_of(report, "smtp.security", "smtp.tls", "smtp.connect")
        found = f"port {req.smtp.port}, {req.smtp.security.value}"
    else:
        st, c, found = None, None, "not checked"
    rows.append(
        Requirement(
            "SMTP submission",
            "Port 587 or 25 with STARTTLS, or 465 with TLS; valid certificate",
            found,
            st,
            _action(c),
        )
    )
    if req.imap:
        st, c = _status_of(report, "imap.security", "imap.tls", "imap.connect")
        found = f"port {req.imap.port}, {req.imap.security.value}"
    else:
        st, c, found = None, None, "not checked"
    rows.append(
        Requirement(
            "IMAP over TLS",
            "Port 993 with TLS; valid certificate",
            found,
            st,
            _action(c),
        )
    )
    plain = report.get("imap.security")
    if plain is not None and plain.code == "imap_insecure":
        rows.append(
            Requirement(
                "No plain IMAP",
                "Plain IMAP on 143 without encryption is not usable",
                "the server offers IMAP without encryption only",
                "fail",
                plain.hint,
            )
        )
    else:
        rows.append(
            Requirement(
                "No plain IMAP",
                "Plain IMAP on 143 without encryption is not usable",
                "encrypted connection used" if req.imap else "not checked",
                "pass" if req.imap and report.get("imap.tls") else None,
                "",
            )
        )
    st, c = _status_of(report, "imap.uidplus")
    rows.append(
        Requirement(
            "UIDPLUS",
            "The IMAP extension UIDPLUS (RFC 4315) enabled",
            c.message if c else "not checked",
            st,
            _action(c),
        )
    )
    server = report.get("imap.server")
    if server is not None and server.code == "imap_exchange_too_old":
        rows.append(
            Requirement(
                "Exchange version",
                "Microsoft Exchange 2010 SP1 or newer",
                server.message,
                "fail",
                server.hint,
            )
        )
    else:
        product = str(server.detail.get("product") or "") if server else ""
        if "Exchange" in product:
            found, st = server.message if server else "", "pass"
        else:
            found, st = (server.message if server else "not checked"), None
        rows.append(
            Requirement(
                "Exchange version",
                "Microsoft Exchange 2010 SP1 or newer (when the server is Exchange)",
                found,
                st,
                "",
            )
        )
    egress = egress_addresses(report)
    rows.append(
        Requirement(
            "Allow Cadence's addresses",
            "If the mail server or firewall restricts client addresses, allow Cadence's",
            ", ".join(egress) or "unknown (no connection made)",
            "info" if egress else None,
            "Add these addresses to the allow-list of the IMAP and SMTP services."
            if egress
            else "",
        )
    )
    return rows


def egress_addresses(report: CheckReport) -> list[str]:
    found = {a for a in report.facts.local_addresses.values() if a}
    return sorted(found | set(report.request.egress_addresses))


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _context(report: CheckReport) -> dict[str, object]:
    return {
        "report": report,
        "request": report.request,
        "requirements": requirements(report),
        "actions": [c for c in report.checks if c.status in ("fail", "warn") and c.hint],
        "egress": egress_addresses(report),
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def render_html(report: CheckReport) -> str:
    return _environment().get_template("it_report.html.j2").render(**_context(report))


_WORD = {"pass": "OK", "fail": "FAIL", "warn": "WARN", "info": "INFO", None: "--"}


def render_text(report: CheckReport) -> str:
    req = report.request
    lines = [
        f"Cadence mailbox requirements - {req.email}",
        f"Verdict: {'meets the requirements' if report.ok else 'does NOT meet the requirements'}",
        "",
        "REQUIREMENTS",
    ]
    for r in requirements(report):
        lines.append(f"[{_WORD[r.status]:>4}] {r.title}: {r.required}")
        lines.append(f"       found: {r.found}")
        if r.action:
            lines.append(f"       to do: {r.action}")
    actions = [c for c in report.checks if c.status in ("fail", "warn") and c.hint]
    if actions:
        lines += ["", "WHAT TO CHANGE"]
        for i, c in enumerate(actions, 1):
            lines.append(f"{i}. {c.message}")
            lines.append(f"   {c.hint}")
    lines += ["", "ALL CHECKS"]
    for c in report.checks:
        lines.append(f"[{_WORD[c.status]:>4}] {c.service.upper()} {c.message}  ({c.code})")
    egress = egress_addresses(report)
    if egress:
        lines += ["", "ADDRESSES TO ALLOW: " + ", ".join(egress)]
    return "\n".join(lines) + "\n"
