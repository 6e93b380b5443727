"""Prove a discovered server before offering it: connect, secure, read capabilities.

Uses the same connection code as production (:func:`cadence.mail.imap.connect_imap`,
:func:`cadence.mail.smtp.connect_smtp`), so a probe that passes means Cadence itself can
connect: the TLS certificate verified, STARTTLS offered where it is used (a server without it
is refused before anything is sent), and for IMAP whether UIDPLUS is advertised.  No
credential is sent by a probe; :func:`try_login` does that, and only when
:func:`cadence.mail.discovery.password_allowed` says the host may receive the password.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Literal

from cadence.errors import CadenceError
from cadence.mail.discovery_net import Resolver
from cadence.mail.discovery_types import DiscoveryError, ProbeResult, ServerSetting
from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint
from cadence.mail.imap import connect_imap
from cadence.mail.smtp import connect_smtp

log = logging.getLogger("cadence.discovery")

Service = Literal["imap", "smtp"]

# A probe of a server that was never going to answer must not eat the whole budget.
DEFAULT_PROBE_TIMEOUT = 6.0


def _connect_options_field(name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(ConnectOptions))


@dataclasses.dataclass
class ServerProber:
    """Probes with the production connection code; ``resolver`` is discovery's resolver.

    When discovery uses its own DNS server (``--dns``), the system resolver cannot know the
    names it found, so the probe connects to the address that server gave.  If the connection
    layer accepts an address to connect to (``ConnectOptions.connect_address``) TLS still
    verifies the host name; otherwise the endpoint is the address itself and the certificate
    must be valid for that address (stricter, never weaker).
    """

    resolver: Resolver
    ca_file: str | None = None
    timeout: float = DEFAULT_PROBE_TIMEOUT
    source_address: str | None = None
    deadline: float | None = None  # time.monotonic() value after which no probe starts

    def _timeout(self) -> float:
        if self.deadline is None:
            return self.timeout
        return max(0.0, min(self.timeout, self.deadline - time.monotonic()))

    async def endpoint(
        self, setting: ServerSetting, timeout: float
    ) -> tuple[Endpoint, ConnectOptions, str | None]:
        """(endpoint, options, address connected to when resolved by discovery's resolver)."""
        options = ConnectOptions(
            ca_file=self.ca_file, timeout=timeout, source_address=self.source_address
        )
        endpoint = Endpoint(setting.host, setting.port, setting.security)
        if not self.resolver.custom:
            return endpoint, options, None
        address = (await self.resolver.addresses(setting.host))[0]
        if _connect_options_field("connect_address"):
            extra: dict[str, Any] = {"connect_address": address}
            return endpoint, dataclasses.replace(options, **extra), address
        return Endpoint(address, setting.port, setting.security), options, address

    async def probe(self, service: Service, setting: ServerSetting) -> ProbeResult:
        timeout = self._timeout()
        if timeout <= 0.05:
            return ProbeResult(
                "failed",
                service=service,
                code="probe_timeout",
                message="no time left in the discovery budget",
            )
        try:
            endpoint, options, address = await self.endpoint(setting, timeout)
        except DiscoveryError as exc:
            return ProbeResult(
                "failed",
                service=service,
                code=f"{service}_dns_failed",
                message=exc.message,
                hint="This machine cannot resolve the server's name: check its DNS and network.",
            )
        try:
            if service == "imap":
                result = await self._probe_imap(endpoint, options)
            else:
                result = await self._probe_smtp(endpoint, options)
        except CadenceError as exc:
            return ProbeResult(
                "failed", service=service, code=exc.code, message=exc.message, hint=exc.hint
            )
        except OSError as exc:  # the connection layer should wrap these; be safe anyway
            return ProbeResult(
                "failed", service=service, code=f"{service}_connect_failed", message=str(exc)
            )
        if address is not None and endpoint.host == address:
            result.message = (result.message + " " if result.message else "") + (
                f"(connected to {address}; the certificate was verified for that address)"
            )
        return result

    async def _probe_imap(self, endpoint: Endpoint, options: ConnectOptions) -> ProbeResult:
        session = await connect_imap(endpoint, options)
        try:
            caps = sorted(session.capabilities)
            result = ProbeResult(
                "ok",
                service="imap",
                tls_version=session.tls.version if session.tls else None,
                uidplus=True if "UIDPLUS" in session.capabilities else None,
                capabilities=caps,
                auth_mechanisms=session.auth_mechanisms,
            )
            if "LOGINDISABLED" in session.capabilities:
                result.status = "warn"
                result.code = "imap_login_disabled"
                result.message = "the server advertises LOGINDISABLED: password login is off"
            elif not result.uidplus:
                result.message = (
                    "UIDPLUS is not advertised before login (many servers list it only after "
                    "login); it is checked when logging in"
                )
            return result
        finally:
            await session.logout()

    async def _probe_smtp(self, endpoint: Endpoint, options: ConnectOptions) -> ProbeResult:
        session = await connect_smtp(endpoint, options)
        try:
            result = ProbeResult(
                "ok",
                service="smtp",
                tls_version=session.tls.version if session.tls else None,
                capabilities=sorted(session.extensions),
                auth_mechanisms=session.auth_mechanisms,
            )
            if not session.auth_mechanisms:
                result.status = "warn"
                result.code = "smtp_no_auth"
                result.message = "the server offers no AUTH mechanism: it may be a relay only"
            return result
        finally:
            await session.quit()


async def try_login(
    prober: ServerProber, service: Service, setting: ServerSetting, credentials: Credentials
) -> dict[str, Any]:
    """Log in to one server with the user's password; returns a JSON-ready outcome."""
    started = time.monotonic()
    out: dict[str, Any] = {"host": setting.host, "port": setting.port}
    try:
        endpoint, options, _ = await prober.endpoint(setting, prober.timeout)
        if service == "imap":
            session = await connect_imap(endpoint, options)
            try:
                await session.login(credentials)
                out["uidplus"] = "UIDPLUS" in session.capabilities  # re-read after login
            finally:
                await session.logout()
            if not out["uidplus"]:
                out.update(
                    status="failed",
                    code="imap_uidplus_missing",
                    message="IMAP Server is not supported",
                    reason="the server does not advertise UIDPLUS (RFC 4315), even after login",
                    hint="Ask the mail server's administrator to enable UIDPLUS, or upgrade it.",
                    elapsed_s=round(time.monotonic() - started, 3),
                )
                return out
        else:
            smtp = await connect_smtp(endpoint, options)
            try:
                await smtp.login(credentials)
            finally:
                await smtp.quit()
        out["status"] = "ok"
    except CadenceError as exc:
        out.update({"status": "failed", **exc.as_dict()})
    out["elapsed_s"] = round(time.monotonic() - started, 3)
    return out
