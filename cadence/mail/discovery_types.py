"""Typed values shared by the discovery sources, the prober and the ranking.

A *source* (the provider table, autoconfig, Autodiscover, DNS SRV, guesses) turns an email
address into :class:`Candidate` values; nothing here does any I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cadence.errors import CadenceError
from cadence.mail.endpoints import Endpoint, Security

# Sources, by name, with the weight the ranking gives them when probes cannot tell candidates
# apart.  An answer from the mailbox's own domain beats a database entry, which beats a guess.
SOURCE_WEIGHTS: dict[str, int] = {
    "provider": 100,  # the built-in table, matched on the address's domain
    "mx-provider": 90,  # the built-in table, matched on the domain's MX hosts
    "autoconfig": 80,  # https://autoconfig.<domain>/mail/config-v1.1.xml
    "autoconfig-wellknown": 78,  # https://<domain>/.well-known/autoconfig/...
    "autodiscover": 75,  # https://<domain>/autodiscover/autodiscover.xml
    "autodiscover-subdomain": 74,  # https://autodiscover.<domain>/autodiscover/...
    "ispdb": 70,  # the ISP database, by the address's domain
    "srv": 65,  # RFC 6186 / RFC 8314 SRV records
    "ispdb-mx": 60,  # the ISP database, by the MX host's domain
    "autodiscover-srv": 55,  # _autodiscover._tcp.<domain>
    "autodiscover-redirect": 50,  # http://autodiscover.<domain>/... redirect method
    "guess": 30,  # imap./mail./smtp.<domain> and the MX host on the standard ports
}
SOURCE_ORDER = tuple(SOURCE_WEIGHTS)


class DiscoveryError(CadenceError):
    """One source failed (bad XML, too large, too many redirects, DNS error, ...).

    It is reported for that source only; discovery itself goes on with the others.
    """

    code = "discovery_failed"


# A host name as DNS allows it (RFC 1123 labels); rejects URLs, spaces, placeholders left over.
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def valid_host(host: str) -> bool:
    return bool(_HOST_RE.match(host))


def normalise_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


def split_address(address: str) -> tuple[str, str]:
    """``local@domain`` -> (local, domain in lower case); raises UsageError-like DiscoveryError."""
    address = address.strip()
    local, sep, domain = address.rpartition("@")
    domain = normalise_host(domain)
    if not sep or not local or not domain or not valid_host(domain) or "." not in domain:
        raise DiscoveryError(
            f"{address!r} is not an email address",
            code="discovery_bad_address",
            hint="Give the full address, such as jane@example.com.",
        )
    return local, domain


def host_in_domain(host: str, domain: str) -> bool:
    host, domain = normalise_host(host), normalise_host(domain)
    return host == domain or host.endswith("." + domain)


@dataclass(frozen=True)
class ServerSetting:
    """One server a source proposes: host, port and how the connection is secured."""

    host: str
    port: int
    security: Security

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "security": self.security.value}

    def endpoint(self) -> Endpoint:
        """The connection layer's value for this server."""
        return Endpoint(self.host, self.port, self.security)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} ({self.security.value})"


@dataclass
class ProbeResult:
    """What connecting (without credentials) showed: reachable, TLS valid, UIDPLUS advertised."""

    # "ok": connected, TLS verified (STARTTLS offered where it is used);
    # "warn": connected and TLS verified, but the server says password login is disabled
    #         (LOGINDISABLED) or offers SMTP without AUTH;
    # "failed": not reachable, TLS not valid, or refused as insecure; "skipped": not probed.
    status: str
    code: str | None = None
    message: str = ""
    hint: str = ""
    tls_version: str | None = None
    # IMAP only.  True: advertised before login.  None: not advertised before login, which
    # proves nothing -- Dovecot and Gmail list UIDPLUS only after login -- so it is checked
    # at login (``verify_login``).  Never False from a probe without credentials.
    uidplus: bool | None = None
    service: str = ""
    capabilities: list[str] = field(default_factory=list)
    auth_mechanisms: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Connected securely: the server can be used (perhaps with a warning)."""
        return self.status in ("ok", "warn")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "elapsed_s": round(self.elapsed_s, 3)}
        if self.code:
            out["code"] = self.code
        if self.message:
            out["message"] = self.message
        if self.hint:
            out["hint"] = self.hint
        if self.tls_version:
            out["tls_version"] = self.tls_version
        if (self.service == "imap" and self.ok) or self.uidplus is not None:
            out["uidplus"] = self.uidplus  # null: not advertised before login, checked at login
        if self.capabilities:
            out["capabilities"] = self.capabilities
        if self.auth_mechanisms:
            out["auth_mechanisms"] = self.auth_mechanisms
        return out


@dataclass
class Candidate:
    """A ranked proposal of settings and where it came from."""

    source: str
    imap: ServerSetting | None
    smtp: ServerSetting | None
    username: str
    provider: str | None = None
    auth: list[str] = field(default_factory=list)  # "password", "oauth2", "app-password", ...
    notes: list[str] = field(default_factory=list)
    url: str | None = None  # where the answer was fetched from
    redirects: list[str] = field(default_factory=list)  # every hop, shown to the user
    # True when any part of the answer travelled over plain http: never trusted with a
    # password unless the user confirms the host.
    insecure_transport: bool = False
    also_from: list[str] = field(default_factory=list)
    probe_imap: ProbeResult | None = None
    probe_smtp: ProbeResult | None = None
    login: dict[str, Any] | None = None

    @property
    def weight(self) -> int:
        return SOURCE_WEIGHTS.get(self.source, 0) - (40 if self.insecure_transport else 0)

    def key(self) -> tuple[ServerSetting | None, ServerSetting | None, str]:
        return (self.imap, self.smtp, self.username.lower())

    @property
    def verified(self) -> bool:
        """Every proposed service connected securely and meets Cadence's requirements."""
        probes = [p for s, p in ((self.imap, self.probe_imap), (self.smtp, self.probe_smtp)) if s]
        return bool(probes) and all(p is not None and p.ok for p in probes)

    def score(self) -> int:
        score = self.weight
        for probe, gain in ((self.probe_imap, 400), (self.probe_smtp, 200)):
            if probe is None:
                continue
            if probe.status == "ok":
                score += gain
            elif probe.status == "warn":
                score += gain * 3 // 4
            if probe.uidplus:
                score += 50  # proven before login: one thing less to find out at login
        if self.imap is None:
            score -= 100
        if self.smtp is None:
            score -= 50
        return score

    def as_dict(self) -> dict[str, Any]:
        probe: dict[str, Any] = {}
        if self.imap is not None:
            probe["imap"] = self.probe_imap.as_dict() if self.probe_imap else {"status": "skipped"}
        if self.smtp is not None:
            probe["smtp"] = self.probe_smtp.as_dict() if self.probe_smtp else {"status": "skipped"}
        out: dict[str, Any] = {
            "source": self.source,
            "provider": self.provider,
            "imap": self.imap.as_dict() if self.imap else None,
            "smtp": self.smtp.as_dict() if self.smtp else None,
            "username": self.username,
            "auth": list(self.auth),
            "probe": probe,
            "verified": self.verified,
            "insecure_transport": self.insecure_transport,
        }
        if self.url:
            out["url"] = self.url
        if self.redirects:
            out["redirects"] = list(self.redirects)
        if self.notes:
            out["notes"] = list(self.notes)
        if self.also_from:
            out["also_from"] = list(self.also_from)
        if self.login is not None:
            out["login"] = self.login
        return out


@dataclass
class SourceReport:
    """How one source went: shown with ``--json`` so a user can see why a source said nothing."""

    name: str
    status: str  # "ok" | "empty" | "error" | "timeout" | "skipped"
    elapsed_s: float = 0.0
    error: dict[str, Any] | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if self.error:
            out["error"] = self.error
        if self.detail:
            out["detail"] = self.detail
        return out
