"""Find a mailbox's IMAP and SMTP settings from its email address, and prove them.

``discover(address, options=...)`` runs every source at once under one time budget
(``options.timeout``, 10 s by default):

=========================  ==============================================================
source                     what it asks
=========================  ==============================================================
provider                   the built-in table (:mod:`cadence.mail.providers`) by domain
mx-provider                the same table by the domain's MX hosts (Microsoft 365, Google)
autoconfig(-http)          ``autoconfig.<domain>`` over https, and over http (marked)
autoconfig-wellknown       ``<domain>/.well-known/autoconfig/...``
ispdb / ispdb-mx           the ISP database by the domain, and by the MX host's domain
autodiscover(-subdomain)   Exchange Autodiscover POX at ``<domain>`` / ``autodiscover.<domain>``
autodiscover-redirect      the plain-http redirect method (marked insecure)
autodiscover-srv           ``_autodiscover._tcp.<domain>``
srv                        RFC 6186 / RFC 8314 SRV records
guess                      ``imap.``/``mail.``/``smtp.<domain>`` and the MX host, probed
=========================  ==============================================================

As soon as a source answers, its servers are probed (connect, TLS, capabilities; no
credentials), each distinct server once however many sources name it.  When the budget runs
out, sources and probes still running are reported as timed out and what is known is ranked:
verified candidates first (IMAP secure with UIDPLUS, SMTP secure), then by how much the source
is trusted.  A source that fails (bad XML, NXDOMAIN, a redirect loop) is reported on its own;
it never stops the others.

Passwords: :func:`password_allowed` says whether a password may be sent to a host: one of the
user's own domain, a provider from the built-in table or the ISP database, or one the user
named with ``--trust-host``; an answer that came over plain http is trusted only by name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from cadence.errors import CadenceError
from cadence.mail import autoconfig, autodiscover
from cadence.mail.autoconfig import (
    DEFAULT_ISPDB_CACHE,
    DEFAULT_ISPDB_URL,
    ClientConfig,
    IspdbCache,
)
from cadence.mail.discovery_net import (
    MAX_REDIRECTS,
    MAX_RESPONSE_BYTES,
    FetchResult,
    HttpFetcher,
    Resolver,
)
from cadence.mail.discovery_types import (
    SOURCE_ORDER,
    SOURCE_WEIGHTS,
    Candidate,
    DiscoveryError,
    ProbeResult,
    ServerSetting,
    SourceReport,
    host_in_domain,
    normalise_host,
    split_address,
)
from cadence.mail.endpoints import ConnectOptions, Endpoint, Security
from cadence.mail.providers import Provider, is_provider_host, provider_for_domain, provider_for_mx

__all__ = [
    "Candidate",
    "DiscoveryError",
    "DiscoveryOptions",
    "DiscoveryResult",
    "ProbeResult",
    "ServerSetting",
    "discover",
    "discover_for_check",
    "password_allowed",
    "verify_login",
]

log = logging.getLogger("cadence.discovery")

Service = Literal["imap", "smtp"]

# Source report names, in the order they are listed.  Candidates carry the SOURCE_WEIGHTS name.
ALL_SOURCES: tuple[str, ...] = (
    "provider",
    "mx-provider",
    "autoconfig",
    "autoconfig-http",
    "autoconfig-wellknown",
    "ispdb",
    "ispdb-mx",
    "autodiscover",
    "autodiscover-subdomain",
    "autodiscover-redirect",
    "autodiscover-srv",
    "srv",
    "guess",
)


def source_weight(name: str) -> int:
    """The trust of a source, by its report name (``autoconfig-http`` is plain http)."""
    if name == "autoconfig-http":
        return SOURCE_WEIGHTS["autoconfig"] - 40
    return SOURCE_WEIGHTS.get(name, 0)


# The standard ports guesses are probed on (RFC 8314: implicit TLS first).
GUESS_IMAP: tuple[tuple[int, Security], ...] = ((993, Security.TLS), (143, Security.STARTTLS))
GUESS_SMTP: tuple[tuple[int, Security], ...] = (
    (465, Security.TLS),
    (587, Security.STARTTLS),
    (25, Security.STARTTLS),
)


class Prober(Protocol):
    """Connects to one server without credentials and says what it found."""

    async def probe(self, service: Service, setting: ServerSetting) -> ProbeResult: ...


@dataclass
class DiscoveryOptions:
    timeout: float = 10.0  # the whole budget: sources and probes, in seconds
    dns: str | None = None  # resolver "HOST:PORT"; None: the system's
    ca_file: str | None = None  # extra CA bundle for https and for probes
    # Port overrides for URLs that name no port (tests point them at local servers).
    https_port: int | None = None
    http_port: int | None = None
    ispdb_url: str | None = DEFAULT_ISPDB_URL  # None: do not ask the ISP database
    ispdb_cache: IspdbCache = field(default_factory=lambda: DEFAULT_ISPDB_CACHE)
    max_redirects: int = MAX_REDIRECTS
    max_response_bytes: int = MAX_RESPONSE_BYTES
    probe: bool = True  # False: list what sources say without connecting (guesses need probes)
    probe_timeout: float = 6.0  # per connection, further capped by what is left of the budget
    source_address: str | None = None  # local address for probes
    guess_imap: tuple[tuple[int, Security], ...] = GUESS_IMAP
    guess_smtp: tuple[tuple[int, Security], ...] = GUESS_SMTP
    sources: frozenset[str] | None = None  # run only these (names from ALL_SOURCES)
    # False: stop as soon as no running source could outrank a verified answer already
    # found.  True: wait for every source (within the budget) to list all answers.
    complete: bool = False
    prober: Prober | None = None  # default: cadence.mail.discovery_probe.ServerProber
    # The user's password, if known: used only for Exchange Autodiscover on the user's own
    # domain over https when it answers 401 (on-premises Exchange does).
    password: str | None = field(default=None, repr=False)

    @classmethod
    def with_cache_dir(cls, directory: Path, **kwargs: Any) -> DiscoveryOptions:
        return cls(ispdb_cache=IspdbCache(directory), **kwargs)


@dataclass
class DiscoveryResult:
    address: str
    domain: str
    candidates: list[Candidate]
    sources: list[SourceReport]
    mx: list[str]
    elapsed_s: float

    @property
    def best(self) -> Candidate | None:
        """The best candidate: the first verified one, else the first (unproven) one."""
        for candidate in self.candidates:
            if candidate.verified:
                return candidate
        return self.candidates[0] if self.candidates else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "candidates": [c.as_dict() for c in self.candidates],
            "elapsed_s": round(self.elapsed_s, 3),
            "mx": list(self.mx),
            "sources": [s.as_dict() for s in self.sources],
        }


def password_allowed(
    candidate: Candidate, host: str, domain: str, trust_hosts: Iterable[str] = ()
) -> tuple[bool, str]:
    """May the user's password be sent to ``host`` (a server of ``candidate``)?"""
    host = normalise_host(host)
    trusted = {normalise_host(h) for h in trust_hosts}
    if host in trusted:
        return True, "confirmed with --trust-host"
    if candidate.insecure_transport:
        return False, (
            f"{host} came from an answer over plain http (it could have been changed on the "
            f"way); confirm it with --trust-host {host}"
        )
    if host_in_domain(host, domain):
        return True, f"{host} belongs to {domain}"
    if is_provider_host(host):
        return True, f"{host} is a known provider's server"
    named = {s.host for s in (candidate.imap, candidate.smtp) if s is not None}
    if candidate.source in ("ispdb", "ispdb-mx") and host in named:
        return True, f"{host} is the provider's server per the ISP database"
    return False, f"{host} is outside {domain}; confirm it with --trust-host {host}"


# -- the run ----------------------------------------------------------------------------------


@dataclass
class _Run:
    address: str
    local: str
    domain: str
    options: DiscoveryOptions
    resolver: Resolver
    fetcher: HttpFetcher
    prober: Prober | None
    deadline: float
    candidates: list[Candidate] = field(default_factory=list)
    reports: dict[str, SourceReport] = field(default_factory=dict)
    probes: dict[tuple[Service, ServerSetting], asyncio.Task[ProbeResult]] = field(
        default_factory=dict
    )
    mx_task: asyncio.Task[list[str]] | None = None
    mx_error: DiscoveryError | None = None

    # -- shared look-ups ---------------------------------------------------------------------

    async def _lookup_mx(self) -> list[str]:
        try:
            return await self.resolver.mx(self.domain)
        except DiscoveryError as exc:
            self.mx_error = exc
            return []

    async def mx(self) -> list[str]:
        assert self.mx_task is not None
        done, _ = await asyncio.wait([self.mx_task])  # wait, never cancel the shared task
        return done.pop().result()

    def probe(self, service: Service, setting: ServerSetting) -> asyncio.Task[ProbeResult]:
        key = (service, setting)
        task = self.probes.get(key)
        if task is None:
            task = asyncio.create_task(
                self._probe(service, setting), name=f"probe {service} {setting}"
            )
            self.probes[key] = task
        return task

    async def _probe(self, service: Service, setting: ServerSetting) -> ProbeResult:
        assert self.prober is not None
        started = time.monotonic()
        try:
            result = await self.prober.probe(service, setting)
        except Exception as exc:  # a prober bug must not take discovery down
            log.exception("probe of %s %s failed", service, setting)
            result = ProbeResult("failed", service=service, code="probe_error", message=str(exc))
        result.elapsed_s = time.monotonic() - started
        return result

    # -- sources -----------------------------------------------------------------------------

    def _from_provider(self, provider: Provider, source: str, why: str) -> Candidate:
        return Candidate(
            source=source,
            provider=provider.name,
            imap=provider.imap,
            smtp=provider.smtp,
            username=provider.username.replace("%EMAILADDRESS%", self.address),
            auth=list(provider.auth),
            notes=[provider.note, why],
        )

    async def src_provider(self) -> list[Candidate]:
        provider = provider_for_domain(self.domain)
        if provider is None:
            return []
        return [self._from_provider(provider, "provider", f"{self.domain} is {provider.name}")]

    async def src_mx_provider(self) -> list[Candidate]:
        mx = await self.mx()
        if self.mx_error is not None:
            raise self.mx_error
        for host in mx:
            provider = provider_for_mx(host)
            if provider is not None:
                why = f"the MX host {host} belongs to {provider.name}"
                return [self._from_provider(provider, "mx-provider", why)]
        return []

    def _from_client_config(
        self, config: ClientConfig, source: str, url: str, fetched: FetchResult | None
    ) -> list[Candidate]:
        imap, smtp = config.best_imap(), config.best_smtp()
        if imap is None and smtp is None:
            raise DiscoveryError(
                f"{url} lists only plaintext servers, which Cadence never uses",
                code="discovery_insecure_only",
            )
        auth: list[str] = []
        for entry in (imap, smtp):
            if entry is not None:
                auth.extend(a for a in entry.auth if a not in auth)
        if config.oauth2 and "oauth2" not in auth:
            auth.append("oauth2")
        notes = []
        plain = [e for e in config.imap + config.smtp if e.setting is None]
        if plain:
            notes.append(f"{len(plain)} plaintext server(s) listed and ignored")
        return [
            Candidate(
                source=source,
                provider=config.display_name or config.provider_id,
                imap=imap.setting if imap else None,
                smtp=smtp.setting if smtp else None,
                username=(imap or smtp).username if (imap or smtp) else self.address,  # type: ignore[union-attr]
                auth=auth,
                notes=notes,
                url=url,
                redirects=list(fetched.redirects) if fetched else [],
                insecure_transport=bool(fetched and fetched.insecure),
            )
        ]

    async def _autoconfig(self, source: str, url: str, allow_http: bool) -> list[Candidate]:
        config, fetched = await autoconfig.fetch_client_config(
            self.fetcher, url, self.address, allow_http=allow_http
        )
        return self._from_client_config(config, source, fetched.url, fetched)

    async def src_autoconfig(self) -> list[Candidate]:
        _, url, _ = autoconfig.autoconfig_urls(self.address)[0]
        return await self._autoconfig("autoconfig", url, False)

    async def src_autoconfig_http(self) -> list[Candidate]:
        _, url, _ = autoconfig.autoconfig_urls(self.address)[1]
        return await self._autoconfig("autoconfig", url, True)

    async def src_autoconfig_wellknown(self) -> list[Candidate]:
        _, url, _ = autoconfig.autoconfig_urls(self.address)[2]
        return await self._autoconfig("autoconfig-wellknown", url, False)

    async def src_ispdb(self) -> list[Candidate]:
        if not self.options.ispdb_url:
            return []
        found = await autoconfig.fetch_ispdb(
            self.fetcher,
            self.options.ispdb_url,
            self.domain,
            self.address,
            self.options.ispdb_cache,
        )
        if found is None:
            return []
        config, url = found
        return self._from_client_config(config, "ispdb", url, None)

    async def src_ispdb_mx(self) -> list[Candidate]:
        if not self.options.ispdb_url:
            return []
        mx = await self.mx()
        if self.mx_error is not None:
            raise self.mx_error
        if not mx:
            return []
        for lookup in autoconfig.mx_lookup_domains(mx[0], self.domain):
            found = await autoconfig.fetch_ispdb(
                self.fetcher,
                self.options.ispdb_url,
                lookup,
                self.address,
                self.options.ispdb_cache,
            )
            if found is not None:
                config, url = found
                candidates = self._from_client_config(config, "ispdb-mx", url, None)
                for c in candidates:
                    c.notes.append(f"found by the MX host {mx[0]} ({lookup})")
                return candidates
        return []

    def _from_autodiscover(
        self, result: autodiscover.AutodiscoverResult, source: str
    ) -> list[Candidate]:
        answer = result.answer
        imap = next((e for e in answer.imap if e.setting), None)
        smtp = next((e for e in answer.smtp if e.setting), None)
        if imap is None and smtp is None:
            raise DiscoveryError(
                f"{result.url} lists only unencrypted servers, which Cadence never uses",
                code="discovery_insecure_only",
            )
        login = (imap.login_name if imap else None) or (smtp.login_name if smtp else None)
        notes = []
        if result.address.lower() != self.address.lower():
            notes.append(f"Autodiscover redirected to the address {result.address}")
        if result.insecure:
            notes.append("the Autodiscover URL came from a plain-http redirect")
        return [
            Candidate(
                source=source,
                provider=f"Exchange ({answer.display_name})" if answer.display_name else "Exchange",
                imap=imap.setting if imap else None,
                smtp=smtp.setting if smtp else None,
                username=login or result.address,
                auth=["password"],
                notes=notes,
                url=result.url,
                redirects=result.redirects,
                insecure_transport=result.insecure,
            )
        ]

    async def src_autodiscover(self) -> list[Candidate]:
        _, url = autodiscover.autodiscover_urls(self.domain)[0]
        result = await autodiscover.ask(
            self.fetcher, url, self.address, password=self.options.password, own_domain=self.domain
        )
        return self._from_autodiscover(result, "autodiscover")

    async def src_autodiscover_subdomain(self) -> list[Candidate]:
        _, url = autodiscover.autodiscover_urls(self.domain)[1]
        result = await autodiscover.ask(
            self.fetcher, url, self.address, password=self.options.password, own_domain=self.domain
        )
        return self._from_autodiscover(result, "autodiscover-subdomain")

    async def src_autodiscover_redirect(self) -> list[Candidate]:
        result = await autodiscover.redirect_method(self.fetcher, self.domain, self.address)
        return self._from_autodiscover(result, "autodiscover-redirect")

    async def src_autodiscover_srv(self) -> list[Candidate]:
        name = f"_autodiscover._tcp.{self.domain}"
        records = [r for r in await self.resolver.srv(name) if r.target]
        if not records:
            return []
        record = records[0]
        result = await autodiscover.ask(
            self.fetcher, autodiscover.srv_url(record.target, record.port), self.address
        )
        candidates = self._from_autodiscover(result, "autodiscover-srv")
        for c in candidates:
            c.notes.append(f"_autodiscover._tcp.{self.domain} names {record.target}:{record.port}")
        return candidates

    async def src_srv(self) -> list[Candidate]:
        # RFC 6186 section 3 / RFC 8314 section 5.1: implicit TLS records preferred.
        names: dict[str, tuple[Service, Security]] = {
            f"_imaps._tcp.{self.domain}": ("imap", Security.TLS),
            f"_imap._tcp.{self.domain}": ("imap", Security.STARTTLS),
            f"_submissions._tcp.{self.domain}": ("smtp", Security.TLS),
            f"_submission._tcp.{self.domain}": ("smtp", Security.STARTTLS),
        }
        lookups = await asyncio.gather(
            *(self.resolver.srv(name) for name in names), return_exceptions=True
        )
        found: dict[Service, ServerSetting] = {}
        errors: list[BaseException] = []
        for (service, security), records in zip(names.values(), lookups, strict=True):
            if isinstance(records, BaseException):
                if not (isinstance(records, DiscoveryError) and records.code == "dns_nxdomain"):
                    errors.append(records)
                continue
            usable = [r for r in records if r.target and r.port]  # "." = not offered (RFC 6186)
            if usable and service not in found:
                found[service] = ServerSetting(usable[0].target, usable[0].port, security)
        if not found:
            if errors:
                raise errors[0]
            return []
        return [
            Candidate(
                source="srv",
                imap=found.get("imap"),
                smtp=found.get("smtp"),
                username=self.address,
                auth=["password"],
                notes=["from DNS SRV records (RFC 6186); the username may be the local part"],
            )
        ]

    async def src_guess(self) -> list[Candidate]:
        if self.prober is None:
            return []  # a guess is only worth offering when a probe confirms it
        mx = await self.mx()
        d = self.domain
        imap_hosts = list(dict.fromkeys([f"imap.{d}", f"mail.{d}", *mx[:1]]))
        smtp_hosts = list(dict.fromkeys([f"smtp.{d}", f"mail.{d}", *mx[:1]]))
        all_hosts = list(dict.fromkeys(imap_hosts + smtp_hosts))
        resolved = await asyncio.gather(
            *(self.resolver.addresses(h) for h in all_hosts), return_exceptions=True
        )
        live = {
            h for h, r in zip(all_hosts, resolved, strict=True) if not isinstance(r, BaseException)
        }

        async def first_working(
            service: Service, hosts: list[str], ports: tuple[tuple[int, Security], ...]
        ) -> ServerSetting | None:
            settings = [ServerSetting(h, p, s) for h in hosts if h in live for p, s in ports]
            tasks = [self.probe(service, s) for s in settings]  # all at once
            fallback: ServerSetting | None = None
            for setting, task in zip(settings, tasks, strict=True):
                done, _ = await asyncio.wait([task])  # in order of preference
                result = done.pop().result()
                if result.status == "ok":
                    return setting
                if result.ok and fallback is None:
                    fallback = setting
            return fallback

        imap, smtp = await asyncio.gather(
            first_working("imap", imap_hosts, self.options.guess_imap),
            first_working("smtp", smtp_hosts, self.options.guess_smtp),
        )
        if imap is None and smtp is None:
            return []
        return [
            Candidate(
                source="guess",
                imap=imap,
                smtp=smtp,
                username=self.address,
                auth=["password"],
                notes=["guessed from common host names; the username may be the local part"],
            )
        ]

    # -- orchestration -----------------------------------------------------------------------

    def _sources(self) -> dict[str, Callable[[], Awaitable[list[Candidate]]]]:
        table: dict[str, Callable[[], Awaitable[list[Candidate]]]] = {
            "provider": self.src_provider,
            "mx-provider": self.src_mx_provider,
            "autoconfig": self.src_autoconfig,
            "autoconfig-http": self.src_autoconfig_http,
            "autoconfig-wellknown": self.src_autoconfig_wellknown,
            "ispdb": self.src_ispdb,
            "ispdb-mx": self.src_ispdb_mx,
            "autodiscover": self.src_autodiscover,
            "autodiscover-subdomain": self.src_autodiscover_subdomain,
            "autodiscover-redirect": self.src_autodiscover_redirect,
            "autodiscover-srv": self.src_autodiscover_srv,
            "srv": self.src_srv,
            "guess": self.src_guess,
        }
        wanted = self.options.sources
        return {k: v for k, v in table.items() if wanted is None or k in wanted}

    async def _run_source(
        self, name: str, source: Callable[[], Awaitable[list[Candidate]]]
    ) -> None:
        started = time.monotonic()
        report = SourceReport(name, "timeout")
        self.reports[name] = report
        try:
            found = await source()
        except CadenceError as exc:
            report.status, report.error = "error", exc.as_dict()
            report.elapsed_s = time.monotonic() - started
            log.info("discovery source %s: %s", name, exc)
            return
        except Exception as exc:  # a bug in one source must not stop the others
            log.exception("discovery source %s crashed", name)
            report.status = "error"
            report.error = {"code": "discovery_source_crashed", "message": str(exc), "hint": ""}
            report.elapsed_s = time.monotonic() - started
            return
        report.status = "ok" if found else "empty"
        report.elapsed_s = time.monotonic() - started
        report.detail = ", ".join(f"imap {c.imap or '-'} / smtp {c.smtp or '-'}" for c in found)
        self.candidates.extend(found)
        if self.prober is None:
            return
        pending: list[asyncio.Task[ProbeResult]] = []
        for candidate in found:
            if candidate.imap is not None:
                pending.append(self.probe("imap", candidate.imap))
            if candidate.smtp is not None:
                pending.append(self.probe("smtp", candidate.smtp))
        if pending:
            await asyncio.wait(pending)

    def _attach_probes(self, candidate: Candidate) -> None:
        """Copy finished probe results onto the candidate; cancelled ones are timeouts."""
        services: tuple[tuple[Service, ServerSetting | None], ...] = (
            ("imap", candidate.imap),
            ("smtp", candidate.smtp),
        )
        for service, setting in services:
            if setting is None:
                continue
            probe_task = self.probes.get((service, setting))
            if probe_task is None or not probe_task.done():
                continue
            if probe_task.cancelled():
                result = ProbeResult(
                    "failed",
                    service=service,
                    code="probe_timeout",
                    message="no answer within the discovery time budget",
                )
            else:
                result = probe_task.result()
            setattr(candidate, f"probe_{service}", result)

    def _settled(self, pending_sources: Iterable[str]) -> bool:
        """True when no source still running could outrank a verified answer already found.

        Sources are ranked by trust first among verified candidates, so once a verified
        candidate comes from a source at least as trusted as every pending one, waiting longer
        cannot change the winner (``options.complete`` waits anyway, to list everything).
        """
        if self.options.complete:
            return False
        for candidate in self.candidates:
            self._attach_probes(candidate)
        verified = [c.weight for c in self.candidates if c.verified]
        if not verified:
            return False
        waiting = [source_weight(name) for name in pending_sources]
        return not waiting or max(verified) >= max(waiting)

    async def run(self) -> None:
        self.mx_task = asyncio.create_task(self._lookup_mx(), name="mx")
        tasks = {
            asyncio.create_task(self._run_source(name, fn), name=f"source {name}"): name
            for name, fn in self._sources().items()
        }
        pending: set[asyncio.Task[None]] = set(tasks)
        settled = False
        try:
            while pending:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    break
                _, pending = await asyncio.wait(
                    pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if pending and self._settled(tasks[t] for t in pending):
                    settled = True
                    break
        finally:
            leftovers: list[asyncio.Task[Any]] = [
                t for t in [*tasks, *self.probes.values(), self.mx_task] if not t.done()
            ]
            for task in leftovers:
                task.cancel()
            if leftovers:
                await asyncio.gather(*leftovers, return_exceptions=True)
        for candidate in self.candidates:
            self._attach_probes(candidate)
        for name, report in self.reports.items():
            if report.status != "timeout":
                continue
            if settled:
                report.status = "skipped"
                report.elapsed_s = 0.0
                report.detail = "stopped: a more trusted source already gave a verified answer"
                continue
            report.elapsed_s = self.options.timeout
            report.error = {
                "code": "discovery_timeout",
                "message": f"{name} did not finish within {self.options.timeout:g}s",
                "hint": "Raise --timeout, or check the network path.",
            }

    def ranked(self) -> list[Candidate]:
        merged: dict[tuple[Any, ...], Candidate] = {}
        for candidate in sorted(self.candidates, key=lambda c: -c.weight):
            key = candidate.key()
            if key in merged:
                first = merged[key]
                if candidate.source not in first.also_from and candidate.source != first.source:
                    first.also_from.append(candidate.source)
                for a in candidate.auth:
                    if a not in first.auth:
                        first.auth.append(a)
            else:
                merged[key] = candidate
        order = {name: i for i, name in enumerate(SOURCE_ORDER)}
        return sorted(merged.values(), key=lambda c: (-c.score(), order.get(c.source, 99)))


async def discover(address: str, *, options: DiscoveryOptions | None = None) -> DiscoveryResult:
    """Discover and probe the settings for ``address``; never longer than ``options.timeout``.

    Raises :class:`DiscoveryError` only for a malformed address or resolver setting; every
    source's failure is reported in ``result.sources``.
    """
    options = options or DiscoveryOptions()
    started = time.monotonic()
    local, domain = split_address(address)
    address = f"{local}@{domain}"
    resolver = Resolver(options.dns, lifetime=max(0.5, options.timeout))
    prober = options.prober
    if prober is None and options.probe:
        from cadence.mail.discovery_probe import ServerProber

        prober = ServerProber(
            resolver=resolver,
            ca_file=options.ca_file,
            timeout=options.probe_timeout,
            source_address=options.source_address,
            deadline=started + options.timeout,
        )
    fetcher = HttpFetcher(
        resolver,
        ca_file=options.ca_file,
        https_port=options.https_port,
        http_port=options.http_port,
        max_redirects=options.max_redirects,
        max_bytes=options.max_response_bytes,
        timeout=options.timeout,
    )
    async with fetcher:
        run = _Run(
            address=address,
            local=local,
            domain=domain,
            options=options,
            resolver=resolver,
            fetcher=fetcher,
            prober=prober,
            deadline=started + options.timeout,
        )
        await run.run()
    mx = run.mx_task.result() if run.mx_task and not run.mx_task.cancelled() else []
    reports = [run.reports[n] for n in ALL_SOURCES if n in run.reports]
    if run.mx_error is not None:
        reports.insert(0, SourceReport("mx", "error", error=run.mx_error.as_dict()))
    return DiscoveryResult(
        address=address,
        domain=domain,
        candidates=run.ranked(),
        sources=reports,
        mx=mx,
        elapsed_s=time.monotonic() - started,
    )


async def verify_login(
    result: DiscoveryResult,
    password: str,
    *,
    options: DiscoveryOptions,
    trust_hosts: Iterable[str] = (),
    candidate: Candidate | None = None,
) -> dict[str, Any] | None:
    """Log in to the best candidate's servers (or ``candidate``'s) with the user's password.

    The password goes only to hosts :func:`password_allowed` accepts; others are reported
    ``skipped`` with code ``untrusted_host`` and the ``--trust-host`` to confirm them.  The
    outcome is also stored in ``candidate.login``.
    """
    from cadence.mail.discovery_probe import ServerProber, try_login
    from cadence.mail.endpoints import Credentials

    chosen = candidate or result.best
    if chosen is None:
        return None
    prober = ServerProber(
        resolver=Resolver(options.dns, lifetime=max(0.5, options.timeout)),
        ca_file=options.ca_file,
        timeout=max(options.probe_timeout, 10.0),
        source_address=options.source_address,
    )
    credentials = Credentials(chosen.username, password)
    outcome: dict[str, Any] = {}
    jobs: dict[str, Awaitable[dict[str, Any]]] = {}
    services: tuple[tuple[Service, ServerSetting | None], ...] = (
        ("imap", chosen.imap),
        ("smtp", chosen.smtp),
    )
    for service, setting in services:
        if setting is None:
            continue
        allowed, why = password_allowed(chosen, setting.host, result.domain, trust_hosts)
        if not allowed:
            outcome[service] = {
                "status": "skipped",
                "code": "untrusted_host",
                "message": f"password not sent: {why}",
                "hint": f"If {setting.host} is right, run again with --trust-host {setting.host}.",
            }
            continue
        jobs[service] = try_login(prober, service, setting, credentials)
    done = await asyncio.gather(*jobs.values())
    outcome.update(zip(jobs, done, strict=True))
    chosen.login = outcome
    return outcome


async def discover_for_check(
    email: str,
    options: ConnectOptions,
    *,
    dns: str | None = None,
    timeout: float = 10.0,
    trust_hosts: Iterable[str] = (),
) -> tuple[Endpoint | None, Endpoint | None] | None:
    """The IMAP and SMTP endpoints ``cadence check --email`` should test when none are given.

    The best candidate (verified first; else the best unproven one, so that the check can say
    precisely what fails).  A service whose host may not receive the password (see
    :func:`password_allowed`) is left out, since the check logs in.  None when nothing at all
    was found.  ``dns`` is the resolver "HOST:PORT" (``Settings.dns``), ``timeout`` the
    discovery budget, separate from ``options.timeout`` (per network step).
    """
    result = await discover(
        email,
        options=DiscoveryOptions(
            timeout=timeout,
            dns=dns,
            ca_file=options.ca_file,
            source_address=options.source_address,
            probe_timeout=min(options.timeout, 6.0),
        ),
    )
    best = result.best
    if best is None:
        return None
    found: list[Endpoint | None] = []
    for setting in (best.imap, best.smtp):
        if (
            setting is not None
            and password_allowed(best, setting.host, result.domain, trust_hosts)[0]
        ):
            found.append(setting.endpoint())
        else:
            if setting is not None:
                log.warning("discovered %s is not trusted with a password; not checked", setting)
            found.append(None)
    if found == [None, None]:
        return None
    return found[0], found[1]
