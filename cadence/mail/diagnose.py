"""``cadence check``: connect to a mailbox exactly as production will and judge every requirement.

The result is a list of :class:`CheckResult` — one per requirement or fact, each ``pass``,
``fail``, ``warn`` or ``info`` with a stable ``code``, a one-line ``message``, a ``hint`` for the
fix and machine-readable ``detail``.  The same report feeds the terminal checklist, ``--json``,
the IT admin's printable page, ``cadence mailbox add`` and the dashboard's wizard.

Requirements (a ``fail`` on any of them refuses the mailbox):
  IMAP: resolves, connects, TLS (implicit, or STARTTLS with a warning), valid certificate,
        login, UIDPLUS (RFC 4315), not Exchange older than 2010 SP1.
  SMTP: resolves, connects, TLS (STARTTLS on 587/25 or implicit on 465), valid certificate,
        login.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, Literal, TypeVar

from cadence.errors import (
    CadenceError,
    ConnectError,
    InsecureConnectionError,
    LoginError,
    TLSError,
)
from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint, Security, resolve
from cadence.mail.imap import ImapSession, connect_imap
from cadence.mail.server_identity import ServerIdentity, identify
from cadence.mail.smtp import SmtpSession, connect_smtp

log = logging.getLogger("cadence.diagnose")

Status = Literal["pass", "fail", "warn", "info"]
NOT_SUPPORTED = "IMAP Server is not supported"


@dataclass
class CheckResult:
    id: str
    service: Literal["imap", "smtp"]
    status: Status
    code: str
    message: str
    hint: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckRequest:
    email: str
    imap: Endpoint | None
    smtp: Endpoint | None
    credentials: Credentials | None
    options: ConnectOptions = field(default_factory=ConnectOptions)
    send_test: bool = False
    egress_addresses: tuple[str, ...] = ()
    # How long the round trip may take for the message to appear over IMAP.
    send_test_timeout: float = 30.0


@dataclass
class MailboxFacts:
    """What the rest of Cadence needs to know about a mailbox that passed."""

    idle: bool = False
    move: bool = False
    condstore: bool = False
    qresync: bool = False
    special_use: bool = False
    sent_folder: str | None = None
    junk_folder: str | None = None
    smtp_size_limit: int | None = None
    imap_server: str | None = None
    smtp_server: str | None = None
    local_addresses: dict[str, str] = field(default_factory=dict)


@dataclass
class CheckReport:
    request: CheckRequest
    checks: list[CheckResult] = field(default_factory=list)
    facts: MailboxFacts = field(default_factory=MailboxFacts)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not any(c.status == "fail" for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "fail"]

    def get(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}

    def add(
        self,
        check_id: str,
        status: Status,
        code: str,
        message: str,
        hint: str = "",
        **detail: Any,
    ) -> CheckResult:
        service: Literal["imap", "smtp"] = "smtp" if check_id.startswith("smtp") else "imap"
        result = CheckResult(check_id, service, status, code, message, hint, detail)
        self.checks.append(result)
        return result

    def add_error(self, check_id: str, error: CadenceError, **detail: Any) -> CheckResult:
        merged = {**error.detail, **detail}
        if error.server_reply:
            merged["server_reply"] = error.server_reply
        return self.add(check_id, "fail", error.code, error.message, error.hint, **merged)


async def run_check(
    request: CheckRequest, progress: Callable[[CheckResult], None] | None = None
) -> CheckReport:
    """Run every check; never raises for a server problem (that is what the report is for)."""
    started = time.monotonic()
    report = CheckReport(request)
    if progress is not None:
        original = report.add

        def add_and_tell(*args: Any, **kwargs: Any) -> CheckResult:
            result = original(*args, **kwargs)
            progress(result)
            return result

        report.add = add_and_tell  # type: ignore[method-assign]
    imap_session: ImapSession | None = None
    smtp_session: SmtpSession | None = None
    try:
        results = await asyncio.gather(
            _check_imap(request, report) if request.imap else _none(),
            _check_smtp(request, report) if request.smtp else _none(),
        )
        imap_session, smtp_session = results[0], results[1]
        if request.send_test:
            await _send_test(request, report, imap_session, smtp_session)
        _egress(request, report)
    finally:
        for session in (imap_session, smtp_session):
            if session is not None:
                await session.logout() if isinstance(session, ImapSession) else await session.quit()
    # Keep one order whatever finished first: IMAP, then SMTP, in check order.
    report.checks.sort(key=lambda c: 0 if c.service == "imap" else 1)
    report.elapsed_s = round(time.monotonic() - started, 3)
    return report


async def _none() -> None:
    return None


# -- IMAP --------------------------------------------------------------------------------------


async def _check_imap(request: CheckRequest, report: CheckReport) -> ImapSession | None:
    assert request.imap is not None
    ep = request.imap
    opts = request.options
    if not await _check_dns("imap", ep, opts, report):
        return None
    session = await _open("imap", ep, opts, report, connect_imap)
    if session is None:
        return None
    if ep.security is Security.TLS:
        report.add("imap.security", "pass", "imap_tls",
                   f"IMAP over implicit TLS on port {ep.port}")
    else:
        report.add(
            "imap.security", "warn", "imap_starttls",
            f"IMAP on port {ep.port} upgraded with STARTTLS",
            "STARTTLS works and is used, but implicit TLS on port 993 is preferred (RFC 8314): "
            "ask IT to enable IMAPS on 993.",
        )
    tls = session.tls
    report.add(
        "imap.tls", "pass", "imap_tls_valid",
        f"Certificate valid for {ep.host}; {tls.version if tls else '?'}",
        tls_version=tls.version if tls else None, cipher=tls.cipher if tls else None,
        subject=tls.peer_subject if tls else None, issuer=tls.peer_issuer if tls else None,
        not_after=tls.not_after if tls else None,
    )
    report.add(
        "imap.capabilities_before_login", "info", "imap_capabilities",
        "Before login: " + " ".join(sorted(session.pre_login_capabilities)),
        capabilities=sorted(session.pre_login_capabilities),
        auth_mechanisms=session.auth_mechanisms,
    )
    if request.credentials is None:
        report.add("imap.login", "warn", "imap_login_skipped", "Login not tested: no password",
                   "Give the password (CADENCE_PASSWORD, --password-stdin or the prompt).")
        _identify_imap(session, None, report)
        _judge_uidplus(session, report, logged_in=False)
        return session
    try:
        await session.login(request.credentials)
    except LoginError as exc:
        report.add_error("imap.login", exc)
        _identify_imap(session, None, report)
        _judge_uidplus(session, report, logged_in=False)
        await session.logout()
        return None
    except CadenceError as exc:
        report.add_error("imap.login", exc)
        await session.logout()
        return None
    report.add("imap.login", "pass", "imap_login_ok",
               f"Logged in as {request.credentials.username}")
    try:
        id_fields = await session.id(name="Cadence", vendor="Cadence")
    except CadenceError:
        id_fields = None
    _identify_imap(session, id_fields, report)
    changed = sorted(session.capabilities ^ session.pre_login_capabilities)
    report.add(
        "imap.capabilities", "info", "imap_capabilities",
        "After login: " + " ".join(sorted(session.capabilities)),
        capabilities=sorted(session.capabilities), changed_after_login=changed,
    )
    _judge_uidplus(session, report, logged_in=True)
    await _imap_features(session, report)
    return session


def _identify_imap(
    session: ImapSession, id_fields: dict[str, str] | None, report: CheckReport
) -> ServerIdentity:
    ident = identify(session.greeting, id_fields)
    report.facts.imap_server = ident.describe()
    too_old = ident.exchange_too_old(session.has("UIDPLUS"))
    detail: dict[str, Any] = {"product": ident.product, "version": ident.version_name,
              "build": list(ident.build) if ident.build else None, "greeting": session.greeting,
              "id": id_fields}
    if ident.is_exchange and too_old:
        found = ident.version_name or "a version older than 2010 SP1 (no UIDPLUS)"
        report.add(
            "imap.server", "fail", "imap_exchange_too_old",
            f"{NOT_SUPPORTED}: Microsoft {found} found; Exchange 2010 SP1 or newer is required",
            "Upgrade the Exchange server to 2010 SP1 or newer (or move the mailbox to "
            "Microsoft 365).",
            **detail,
        )
    else:
        report.add("imap.server", "info", "imap_server_identified",
                   f"Server: {ident.describe()}", **detail)
    return ident


def _judge_uidplus(session: ImapSession, report: CheckReport, *, logged_in: bool) -> None:
    if session.has("UIDPLUS"):
        report.add("imap.uidplus", "pass", "imap_uidplus",
                   "UIDPLUS (RFC 4315) is advertised")
        return
    if not logged_in:
        # Many servers (Dovecot, Gmail) list their extensions only after login.
        report.add("imap.uidplus", "warn", "imap_uidplus_unknown",
                   "UIDPLUS could not be checked: the server lists it only after login",
                   "Run the check again with a working password.")
        return
    report.add(
        "imap.uidplus", "fail", "imap_uidplus_missing",
        f"{NOT_SUPPORTED}: the server does not advertise UIDPLUS (RFC 4315)",
        "Ask the mail server's administrator to enable the UIDPLUS extension; on Microsoft "
        "Exchange, upgrade to Exchange 2010 SP1 or newer.",
        capabilities=sorted(session.capabilities),
    )


async def _imap_features(session: ImapSession, report: CheckReport) -> None:
    facts = report.facts
    facts.idle = session.has("IDLE")
    facts.move = session.has("MOVE")
    facts.condstore = session.has("CONDSTORE")
    facts.qresync = session.has("QRESYNC")
    facts.special_use = session.has("SPECIAL-USE")
    if facts.idle:
        report.add("imap.idle", "pass", "imap_idle", "IDLE: new mail is pushed at once")
    else:
        report.add("imap.idle", "warn", "imap_idle_missing",
                   "No IDLE: Cadence will poll for replies",
                   "Replies are noticed at the next poll instead of at once; enable IDLE.")
    for cap, fact in (("MOVE", facts.move), ("CONDSTORE", facts.condstore),
                      ("QRESYNC", facts.qresync), ("SPECIAL-USE", facts.special_use)):
        report.add(f"imap.{cap.lower().replace('-', '_')}", "info",
                   f"imap_{cap.lower().replace('-', '_')}",
                   f"{cap}: {'yes' if fact else 'no'}", supported=fact)
    try:
        folders = await session.list_folders()
    except CadenceError as exc:
        report.add_error("imap.folders", exc)
        return
    for flag, check_id, attr in (("\\Sent", "imap.sent_folder", "sent_folder"),
                                 ("\\Junk", "imap.junk_folder", "junk_folder")):
        folder = await session.find_special_folder(flag, folders)
        label = flag.strip("\\")
        if folder is None:
            report.add(check_id, "warn", f"imap_{label.lower()}_folder_missing",
                       f"No {label} folder found (no {flag} flag, no usual name)",
                       f"Create a {label} folder or enable SPECIAL-USE (RFC 6154).")
            continue
        setattr(report.facts, attr, folder.name)
        how = "SPECIAL-USE flag" if folder.has_flag(flag) else "its usual name"
        report.add(check_id, "info", f"imap_{label.lower()}_folder",
                   f"{label} folder: {folder.display_name} (found by {how})",
                   folder=folder.name, found_by="flag" if folder.has_flag(flag) else "name")


# -- SMTP --------------------------------------------------------------------------------------


async def _check_smtp(request: CheckRequest, report: CheckReport) -> SmtpSession | None:
    assert request.smtp is not None
    ep = request.smtp
    opts = request.options
    if not await _check_dns("smtp", ep, opts, report):
        return None
    if ep.port not in (587, 25, 465):
        report.add("smtp.port", "info", "smtp_port_nonstandard",
                   f"Port {ep.port} is not a standard submission port (587, 465, 25)")
    smtp_session = await _open("smtp", ep, opts, report, connect_smtp)
    if smtp_session is None:
        return None
    session = smtp_session
    how = "implicit TLS" if ep.security is Security.TLS else "STARTTLS"
    report.add("smtp.security", "pass", "smtp_tls", f"SMTP submission on port {ep.port} with {how}")
    tls = session.tls
    report.add(
        "smtp.tls", "pass", "smtp_tls_valid",
        f"Certificate valid for {ep.host}; {tls.version if tls else '?'}",
        tls_version=tls.version if tls else None, cipher=tls.cipher if tls else None,
        subject=tls.peer_subject if tls else None, issuer=tls.peer_issuer if tls else None,
        not_after=tls.not_after if tls else None,
    )
    ident = identify(session.greeting.partition(" ")[2])
    report.facts.smtp_server = ident.describe()
    report.add("smtp.server", "info", "smtp_server_identified",
               f"Server: {ident.describe()}", greeting=session.greeting,
               product=ident.product)
    report.add("smtp.extensions", "info", "smtp_extensions",
               "Extensions: " + " ".join(sorted(session.extensions)),
               extensions=session.extensions, auth_mechanisms=session.auth_mechanisms)
    report.facts.smtp_size_limit = session.size_limit
    if session.size_limit:
        report.add("smtp.size", "info", "smtp_size_limit",
                   f"Largest message accepted: {session.size_limit / 1_048_576:.1f} MB",
                   size_limit=session.size_limit)
    if request.credentials is None:
        report.add("smtp.login", "warn", "smtp_login_skipped", "Login not tested: no password",
                   "Give the password (CADENCE_PASSWORD, --password-stdin or the prompt).")
        return session
    try:
        await session.login(request.credentials)
    except CadenceError as exc:
        report.add_error("smtp.login", exc)
        await session.quit()
        return None
    report.add("smtp.login", "pass", "smtp_login_ok",
               f"Logged in as {request.credentials.username}")
    return session


SessionT = TypeVar("SessionT", ImapSession, SmtpSession)


async def _open(
    service: Literal["imap", "smtp"],
    ep: Endpoint,
    opts: ConnectOptions,
    report: CheckReport,
    opener: Callable[[Endpoint, ConnectOptions], Awaitable[SessionT]],
) -> SessionT | None:
    """Connect and record the connection, TLS and security outcome as distinct checks."""
    try:
        session = await opener(ep, opts)
    except (TLSError, InsecureConnectionError) as exc:
        # The TCP connection worked; what failed is the encryption.
        report.add(f"{service}.connect", "pass", f"{service}_connected",
                   f"Connected to {ep.host}:{ep.port}")
        which = "tls" if isinstance(exc, TLSError) else "security"
        report.add_error(f"{service}.{which}", exc)
        return None
    except CadenceError as exc:
        report.add_error(f"{service}.connect", exc)
        return None
    report.facts.local_addresses[service] = session.local_address or ""
    report.add(
        f"{service}.connect", "pass", f"{service}_connected",
        f"Connected to {ep.host}:{ep.port} ({session.peer_address}) "
        f"from local address {session.local_address}",
        peer_address=session.peer_address, local_address=session.local_address,
    )
    return session


async def _check_dns(
    service: Literal["imap", "smtp"], ep: Endpoint, opts: ConnectOptions, report: CheckReport
) -> bool:
    try:
        addresses = (
            [opts.connect_address]
            if opts.connect_address
            else await resolve(ep.host, ep.port, service, opts.timeout, opts.resolver)
        )
    except ConnectError as exc:
        report.add_error(f"{service}.dns", exc)
        return False
    report.add(f"{service}.dns", "pass", f"{service}_dns_ok",
               f"{ep.host} resolves to {', '.join(addresses)}", addresses=addresses)
    return True


# -- round trip and egress ---------------------------------------------------------------------


async def _send_test(
    request: CheckRequest,
    report: CheckReport,
    imap: ImapSession | None,
    smtp: SmtpSession | None,
) -> None:
    if imap is None or smtp is None or request.credentials is None:
        report.add("smtp.send_test", "fail", "send_test_not_run",
                   "Round trip not run: IMAP and SMTP must both connect and log in first",
                   "Fix the failures above, then run the check again with --send-test.")
        return
    message = build_test_message(request.email)
    message_id = str(message["Message-ID"])
    try:
        result = await smtp.send(message.as_bytes(), request.email, [request.email])
    except CadenceError as exc:
        report.add_error("smtp.send_test", exc)
        return
    report.add("smtp.send_test", "pass", "send_test_sent",
               f"Test message accepted by SMTP ({result.code} {result.message})",
               message_id=message_id, reply=f"{result.code} {result.message}")
    ids = [message_id] + ([result.provider_message_id] if result.provider_message_id else [])
    started = time.monotonic()
    folders = ["INBOX"] + ([report.facts.junk_folder] if report.facts.junk_folder else [])
    try:
        while True:
            for folder in folders:
                await imap.select(folder)
                for mid in ids:
                    uids = await imap.search_message_id(mid)
                    if uids:
                        waited = round(time.monotonic() - started, 2)
                        await imap.uid_expunge(uids)
                        if folder == "INBOX":
                            report.add("imap.receive_test", "pass", "send_test_received",
                                       f"Test message arrived in INBOX after {waited}s and was "
                                       "removed again", seconds=waited, uids=uids)
                        else:
                            report.add("imap.receive_test", "warn", "send_test_junk",
                                       f"Test message arrived in {folder} (junk) after {waited}s",
                                       "Ask IT to whitelist the mailbox's own address.",
                                       seconds=waited, folder=folder)
                        return
            if time.monotonic() - started > request.send_test_timeout:
                break
            await asyncio.sleep(0.25)
    except CadenceError as exc:
        report.add_error("imap.receive_test", exc)
        return
    report.add("imap.receive_test", "fail", "send_test_not_received",
               f"Test message did not arrive over IMAP within {request.send_test_timeout:g}s",
               "The server accepted it but it was not delivered to INBOX: check mail filters, "
               "quarantine and the server's queue.", message_id=message_id)


def build_test_message(address: str) -> EmailMessage:
    domain = address.rpartition("@")[2] or "localhost"
    msg = EmailMessage(policy=default_policy)
    msg["From"] = address
    msg["To"] = address
    msg["Subject"] = "Cadence connection test (safe to delete)"
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = f"<cadence-check-{uuid.uuid4().hex}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: nobody should auto-reply to this
    msg.set_content(
        "Cadence sent this message to itself to prove that sending (SMTP) and receiving (IMAP)\n"
        "both work. It removes the message again at once.\n"
    )
    return msg


def _egress(request: CheckRequest, report: CheckReport) -> None:
    seen = sorted({a for a in report.facts.local_addresses.values() if a})
    for service in ("imap", "smtp"):
        local = report.facts.local_addresses.get(service)
        if not local:
            continue
        report.add(
            f"{service}.egress", "info", "egress_address",
            f"Cadence connected from {local}"
            + (f"; deployment egress: {', '.join(request.egress_addresses)}"
               if request.egress_addresses else ""),
            "If the mail server restricts client addresses, allow these. Behind NAT the server "
            "sees the network's public address instead.",
            local_address=local, configured_egress=list(request.egress_addresses),
            all_local_addresses=seen,
        )

