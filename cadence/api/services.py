"""The steps the API and the dashboard share: build a check from a form, connect a mailbox,
apply a cadence for a user, import prospects for a user.  Each one calls the engine's services
(the same ones the CLI calls); what is added here is ownership."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from cadence.engine.accounts import ForbiddenError, Principal
from cadence.engine.cadences import ApplyResult, apply_cadence, parse_cadence
from cadence.engine.mailboxes import MailboxSpec, save_mailbox
from cadence.engine.prospects import (
    ImportRejected,
    ImportReport,
    RowError,
    import_prospects,
    parse_csv,
)
from cadence.engine.runtime import Runtime
from cadence.engine.scheduling import Window, parse_holidays, zone
from cadence.errors import CadenceError, UsageError
from cadence.mail.diagnose import CheckReport, CheckRequest, run_check
from cadence.mail.discovery import DiscoveryOptions, DiscoveryResult, discover
from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint
from cadence.store.models import Mailbox, Prospect
from cadence.store.repositories import CadenceRepository, MailboxRepository, ProspectRepository


class CheckFailed(CadenceError):
    """A mailbox that fails the check is refused with the check's own code and message."""

    http_status = 422

    def __init__(self, report: CheckReport) -> None:
        first = report.failures[0]
        super().__init__(
            f"Mailbox not connected: {first.message}",
            code=first.code,
            hint=first.hint,
            detail={"check": report.as_dict()},
        )
        self.report = report


@dataclass(frozen=True)
class Connection:
    email: str
    password: str
    username: str | None
    imap_host: str
    imap_port: int
    imap_security: str | None
    smtp_host: str
    smtp_port: int
    smtp_security: str | None
    ca_file: str | None = None
    timeout: float = 20.0


def check_request(
    conn: Connection, runtime: Runtime, who: Principal, *, send_test: bool = False
) -> CheckRequest:
    if "@" not in conn.email:
        raise UsageError(f"{conn.email!r} is not an email address", code="bad_email")
    if conn.ca_file:
        if not who.is_admin:
            raise ForbiddenError("only an admin may name a CA file on the server")
        if not Path(conn.ca_file).is_file():
            raise UsageError(f"no CA file {conn.ca_file}", code="bad_ca_file")
    settings = runtime.settings
    return CheckRequest(
        email=conn.email.strip(),
        imap=Endpoint.parse(conn.imap_host.strip(), conn.imap_port, conn.imap_security),
        smtp=Endpoint.parse(conn.smtp_host.strip(), conn.smtp_port, conn.smtp_security),
        credentials=Credentials(conn.username or conn.email.strip(), conn.password),
        options=ConnectOptions(ca_file=conn.ca_file, timeout=conn.timeout, resolver=settings.dns),
        send_test=send_test,
        egress_addresses=tuple(settings.egress_addresses),
    )


async def discover_settings(email: str, runtime: Runtime, timeout: float = 10.0) -> DiscoveryResult:
    import os

    from cadence.mail.autoconfig import DEFAULT_ISPDB_URL, IspdbCache

    if "@" not in email:
        raise UsageError(f"{email!r} is not an email address", code="bad_email")
    settings = runtime.settings
    options = DiscoveryOptions(
        timeout=timeout,
        dns=settings.dns,
        # As `cadence discover`: CADENCE_ISPDB_URL="" skips the ISP database.
        ispdb_url=os.environ.get("CADENCE_ISPDB_URL", DEFAULT_ISPDB_URL) or None,
        ispdb_cache=IspdbCache(Path(settings.home) / "cache" / "ispdb"),
    )
    return await discover(email.strip(), options=options)


async def connect_mailbox(
    runtime: Runtime,
    who: Principal,
    conn: Connection,
    *,
    limits: dict[str, Any],
) -> tuple[Mailbox, CheckReport, bool]:
    """Check the mailbox (no database session is held during the network check), refuse
    it if any requirement fails, else store it as the caller's."""
    zone(str(limits.get("timezone", "UTC")))
    Window.parse(
        str(limits.get("work_days", "mon,tue,wed,thu,fri")),
        str(limits.get("work_from", "09:00")),
        str(limits.get("work_to", "17:00")),
    )
    parse_holidays(tuple(limits.get("holidays", ())))
    async with runtime.db.transaction() as s:
        existing = await MailboxRepository(s).by_address(conn.email)
        if existing is not None and not who.owns(existing):
            raise UsageError(
                f"the mailbox {conn.email} is already connected by another user",
                code="mailbox_exists",
                hint="ask an admin to hand it over",
            )
    request = check_request(conn, runtime, who)
    report = await run_check(request)
    if not report.ok:
        raise CheckFailed(report)
    assert request.imap is not None and request.smtp is not None
    spec = MailboxSpec(
        address=conn.email.strip(),
        username=conn.username or conn.email.strip(),
        password=conn.password,
        imap=request.imap,
        smtp=request.smtp,
        ca_file=conn.ca_file,
        display_name=limits.get("display_name"),
        daily_cap=int(limits.get("daily_cap", 50)),
        min_gap_seconds=int(limits.get("min_gap_seconds", 90)),
        jitter_seconds=int(limits.get("jitter_seconds", 60)),
        timezone=str(limits.get("timezone", "UTC")),
        work_days=str(limits.get("work_days", "mon,tue,wed,thu,fri")),
        work_from=str(limits.get("work_from", "09:00")),
        work_to=str(limits.get("work_to", "17:00")),
        holidays=tuple(limits.get("holidays", ())),
    )
    async with runtime.db.transaction() as s:
        mailbox, created = await save_mailbox(s, spec, runtime.secrets)
        if created or mailbox.owner_id is None:
            mailbox.owner_id, mailbox.team_id = who.user_id, who.team_id
        await s.flush()
    return mailbox, report, created


def cadence_yaml(name: str, description: str | None, steps: list[dict[str, Any]]) -> str:
    """The API's JSON cadence as the YAML `cadence cadence apply` reads, so both go through
    one parser and one set of rules."""
    doc: dict[str, Any] = {"name": name, "steps": steps}
    if description:
        doc["description"] = description
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


async def apply_owned_cadence(
    s: AsyncSession,
    who: Principal,
    text: str,
    *,
    cadence_id: int | None,
    source: str = "cadence",
) -> ApplyResult:
    spec = parse_cadence(text, source)
    repo = CadenceRepository(s)
    same_name = await repo.by_name(spec.name)
    if cadence_id is None:
        if same_name is not None:
            raise UsageError(
                f"a cadence named {spec.name!r} already exists",
                code="cadence_exists",
                hint="choose another name, or update that cadence",
            )
    else:
        current = await repo.get(cadence_id)
        if current is None or not who.owns(current):
            raise UsageError(f"no cadence {cadence_id}", code="unknown_cadence")
        if same_name is not None and same_name.id != cadence_id:
            raise UsageError(f"a cadence named {spec.name!r} already exists", code="cadence_exists")
        if current.name != spec.name:
            current.name = spec.name  # a rename: apply_cadence finds it by its new name
            await s.flush()
    result = await apply_cadence(s, spec)
    if result.created:
        cadence = await repo.get(result.cadence_id)
        assert cadence is not None
        cadence.owner_id, cadence.team_id = who.user_id, who.team_id
        await s.flush()
    return result


async def import_owned_prospects(
    s: AsyncSession, who: Principal, text: str, mapping: dict[str, str] | None
) -> ImportReport:
    """`cadence prospects import`, for a user: rows whose address belongs to another user's
    prospect are refused (each listed with its line), and new prospects are theirs."""
    rows, report = parse_csv(text, mapping)
    if report.ok:
        existing = await ProspectRepository(s).by_emails([r.email for r in rows])
        for row in rows:
            found = existing.get(row.email)
            if found is not None and not who.owns(found):
                report.errors.append(
                    RowError(row.line, "email", f"{row.email} is another user's prospect")
                )
    if not report.ok:
        raise ImportRejected(report)
    before = set((await ProspectRepository(s).by_emails([r.email for r in rows])).keys())
    report = await import_prospects(s, rows, report)
    new = [r.email for r in rows if r.email not in before]
    for prospect in (await ProspectRepository(s).by_emails(new)).values():
        prospect.owner_id, prospect.team_id = who.user_id, who.team_id
    await s.flush()
    return report


def one_row_csv(fields: dict[str, Any]) -> str:
    """One prospect as a CSV row, so a prospect created through the API is checked by the
    import's rules (address, time zone, lengths)."""
    custom = dict(fields.pop("custom_fields", None) or {})
    row = {k: ("" if v is None else str(v)) for k, v in fields.items()}
    row.update({k: str(v) for k, v in custom.items()})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
    return out.getvalue()


async def owned_prospect_or_none(s: AsyncSession, who: Principal, email: str) -> Prospect | None:
    found = await ProspectRepository(s).by_email(email)
    return found if found is not None and who.owns(found) else None
