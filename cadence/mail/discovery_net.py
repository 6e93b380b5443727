"""The network side of discovery: a DNS resolver and a bounded HTTP fetcher.

Everything a discovery source reads from the network is untrusted and bounded:

* DNS through dnspython's async resolver, optionally pointed at one ``host:port`` (tests run a
  local server; some networks want a specific resolver).  NXDOMAIN, SERVFAIL and timeouts are
  told apart, and an empty answer is simply "no records".
* HTTP through httpx with redirects followed *by hand*: each hop is recorded (and shown to the
  user), the number of hops is capped, a hop to plain http marks the answer insecure, and the
  body is read in chunks and cut off at a size limit instead of being buffered whole.
  When a resolver address is configured, host names in URLs are resolved through it too and
  the connection goes to the address while TLS still verifies the host name (SNI).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import urljoin

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
import httpx

from cadence.mail.discovery_types import DiscoveryError, host_in_domain, normalise_host

log = logging.getLogger("cadence.discovery")

# Limits.  Autoconfig and Autodiscover documents are a few KiB; 256 KiB leaves room for big
# ISP files while keeping a hostile server from feeding us megabytes.
MAX_RESPONSE_BYTES = 256 * 1024
MAX_REDIRECTS = 5
USER_AGENT = "Cadence-Discovery/0.1"


def parse_hostport(value: str, default_port: int = 53) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:53"`` or ``"10.0.0.1"`` -> (address, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError as exc:
        raise DiscoveryError(
            f"{value!r} is not HOST:PORT", code="discovery_bad_dns", hint="Use e.g. 127.0.0.1:53."
        ) from exc
    if not host or not 0 < port < 65536:
        raise DiscoveryError(
            f"{value!r} is not HOST:PORT", code="discovery_bad_dns", hint="Use e.g. 127.0.0.1:53."
        )
    return host, port


@dataclass(frozen=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str  # "" when the record says "service not available" (target ".", RFC 2782)


class Resolver:
    """DNS look-ups for discovery.  ``nameserver`` is ``"host:port"`` or None (system)."""

    def __init__(self, nameserver: str | None = None, *, lifetime: float = 5.0) -> None:
        self.custom = nameserver is not None
        if nameserver is not None:
            host, port = parse_hostport(nameserver)
            try:
                ipaddress.ip_address(host)
            except ValueError as exc:
                raise DiscoveryError(
                    f"the DNS server must be an IP address, not {host!r}",
                    code="discovery_bad_dns",
                    hint="Give the resolver as ADDRESS:PORT, e.g. 127.0.0.1:5353.",
                ) from exc
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)]
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = lifetime
        self._resolver.timeout = min(2.0, lifetime)
        self._resolver.cache = dns.resolver.Cache()

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            return await self._resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            raise DiscoveryError(
                f"{name} does not exist (NXDOMAIN)",
                code="dns_nxdomain",
                hint="Nothing is published in DNS under this name.",
            ) from exc
        except dns.resolver.NoAnswer:
            return None
        except dns.resolver.NoNameservers as exc:
            raise DiscoveryError(
                f"the DNS server failed to answer for {name} (SERVFAIL)",
                code="dns_servfail",
                hint="The domain's DNS servers are failing; try again later.",
            ) from exc
        except dns.exception.Timeout as exc:
            raise DiscoveryError(
                f"DNS look-up of {name} timed out",
                code="dns_timeout",
                hint="Check this machine's DNS resolver.",
            ) from exc
        except dns.exception.DNSException as exc:
            raise DiscoveryError(
                f"DNS look-up of {name} failed: {exc}",
                code="dns_failed",
                hint="Check this machine's DNS resolver.",
            ) from exc

    async def mx(self, domain: str) -> list[str]:
        """MX hosts, most preferred first; [] when the domain has none."""
        try:
            answer = await self._query(domain, "MX")
        except DiscoveryError as exc:
            if exc.code == "dns_nxdomain":
                exc.hint = "The domain does not exist: check the spelling of the address."
            raise
        if answer is None:
            return []
        records = sorted(answer, key=lambda r: (r.preference, str(r.exchange)))
        hosts: list[str] = []
        for r in records:
            host = normalise_host(str(r.exchange))
            if host and host not in hosts:  # RFC 7505 "null MX" is ".": no mail at all
                hosts.append(host)
        return hosts

    async def srv(self, name: str) -> list[SrvRecord]:
        """SRV records in the order RFC 2782 says to try them (priority, then weight)."""
        answer = await self._query(name, "SRV")
        if answer is None:
            return []
        records = [
            SrvRecord(
                int(r.priority),
                int(r.weight),
                int(r.port),
                normalise_host(str(r.target)),
            )
            for r in answer
        ]
        # Weighted random choice within a priority only matters for load spreading; discovery
        # wants a stable answer, so the heaviest comes first.
        return sorted(records, key=lambda r: (r.priority, -r.weight, r.target))

    async def addresses(self, host: str) -> list[str]:
        """A and AAAA addresses of ``host``; raises DiscoveryError when it does not resolve."""
        host = normalise_host(host)
        try:
            ipaddress.ip_address(host)
            return [host]
        except ValueError:
            pass
        if not self.custom:
            loop = asyncio.get_running_loop()
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(host, None, type=socket.SOCK_STREAM),
                    self._resolver.lifetime,
                )
            except (socket.gaierror, TimeoutError) as exc:
                raise DiscoveryError(
                    f"{host} does not resolve",
                    code="dns_failed",
                    hint="Check the host name and this machine's DNS resolver.",
                ) from exc
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        found: list[str] = []
        first_error: DiscoveryError | None = None
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._query(host, rdtype)
            except DiscoveryError as exc:
                first_error = first_error or exc
                continue
            if answer is not None:
                found.extend(str(r) for r in answer)
        if not found:
            raise first_error or DiscoveryError(
                f"{host} has no address records",
                code="dns_no_address",
                hint="Check the host name.",
            )
        return found


@dataclass
class FetchResult:
    url: str  # the final URL
    status: int
    body: bytes
    redirects: list[str] = field(default_factory=list)  # each URL moved to, in order
    insecure: bool = False  # some hop was plain http
    content_type: str = ""
    location: str | None = None  # the redirect target, when not following redirects


@dataclass
class HttpFetcher:
    """Bounded HTTP(S) for discovery sources.

    ``https_port`` / ``http_port`` replace the default port (443 / 80) of URLs that name none;
    tests use them to point every source at local servers on free ports.
    """

    resolver: Resolver
    ca_file: str | None = None
    https_port: int | None = None
    http_port: int | None = None
    max_redirects: int = MAX_REDIRECTS
    max_bytes: int = MAX_RESPONSE_BYTES
    timeout: float = 10.0
    _client: httpx.AsyncClient | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    async def __aenter__(self) -> HttpFetcher:
        self._client = httpx.AsyncClient(
            verify=self._ssl_context(),
            follow_redirects=False,
            timeout=httpx.Timeout(self.timeout),
            trust_env=False,  # a proxy from the environment would see the mailbox address
            headers={"User-Agent": USER_AGENT},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _target(self, url: httpx.URL) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
        """Where to connect for ``url``: port overrides applied; custom DNS resolved here."""
        port = url.port
        if port is None:
            port = self.https_port if url.scheme == "https" else self.http_port
        target = url.copy_with(port=port) if port is not None else url
        headers: dict[str, str] = {}
        extensions: dict[str, str] = {}
        if self.resolver.custom:
            host = url.host
            addresses = await self.resolver.addresses(host)
            if addresses[0] != host:
                headers["Host"] = host if port is None else f"{host}:{port}"
                if url.scheme == "https":
                    extensions["sni_hostname"] = host  # TLS still verifies the *name*
                target = target.copy_with(host=addresses[0])
        return target, headers, extensions

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        allow_http: bool = False,
        follow_redirects: bool = True,
        basic_auth: tuple[str, str] | None = None,
        auth_domain: str | None = None,
    ) -> FetchResult:
        """Fetch ``url``, following at most ``max_redirects`` redirects, each recorded.

        A POST that is redirected (301/302/307/308) is repeated as a POST, as Autodiscover
        expects.  ``allow_http``: a plain-http URL (or hop) is allowed but marks the result.
        ``basic_auth`` (user, password) is sent only to https hops whose host is in
        ``auth_domain`` -- never to a host a redirect leads to outside it.
        """
        assert self._client is not None, "use 'async with HttpFetcher(...)'"
        current = httpx.URL(url)
        redirects: list[str] = []
        insecure = False
        seen: set[str] = set()
        while True:
            if current.scheme not in ("http", "https"):
                raise DiscoveryError(
                    f"refusing to fetch {current} (not http or https)", code="http_bad_scheme"
                )
            if current.scheme == "http":
                if not allow_http:
                    raise DiscoveryError(
                        f"refusing to follow a redirect to plain http: {current}",
                        code="http_downgrade",
                        hint="An answer over plain http could have been changed on the way.",
                    )
                insecure = True
            seen.add(str(current))
            target, extra_headers, extensions = await self._target(current)
            if (
                basic_auth is not None
                and auth_domain is not None
                and current.scheme == "https"
                and host_in_domain(current.host, auth_domain)
            ):
                token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
                extra_headers["Authorization"] = f"Basic {token}"
            request = self._client.build_request(
                method,
                target,
                content=content,
                headers={**(headers or {}), **extra_headers},
                extensions=extensions,
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise DiscoveryError(f"{current} timed out", code="http_timeout") from exc
            except httpx.ConnectError as exc:
                cause = exc.__context__ or exc.__cause__
                if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE" in str(exc):
                    raise DiscoveryError(
                        f"the TLS certificate of {current.host} did not verify: {exc}",
                        code="http_tls_failed",
                    ) from exc
                raise DiscoveryError(
                    f"cannot connect to {current}: {exc}", code="http_connect_failed"
                ) from exc
            except httpx.HTTPError as exc:
                raise DiscoveryError(f"{current}: {exc}", code="http_failed") from exc
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise DiscoveryError(
                            f"{current} redirected without a Location", code="http_bad_redirect"
                        )
                    nxt = httpx.URL(urljoin(str(current), location))
                    if not follow_redirects:
                        return FetchResult(
                            url=str(current),
                            status=response.status_code,
                            body=b"",
                            insecure=insecure,
                            location=str(nxt),
                        )
                    if len(redirects) >= self.max_redirects or str(nxt) in seen:
                        raise DiscoveryError(
                            f"too many redirects from {url} (stopped after "
                            f"{len(redirects)}: {' -> '.join(redirects)})",
                            code="http_redirect_loop",
                            detail={"redirects": [*redirects, str(nxt)]},
                        )
                    redirects.append(str(nxt))
                    log.info("discovery: %s redirected to %s", current, nxt)
                    if response.status_code == 303:
                        method, content = "GET", None
                    current = nxt
                    continue
                body = await self._read_bounded(response, current)
                return FetchResult(
                    url=str(current),
                    status=response.status_code,
                    body=body,
                    redirects=redirects,
                    insecure=insecure,
                    content_type=response.headers.get("content-type", ""),
                )
            finally:
                await response.aclose()

    async def _read_bounded(self, response: httpx.Response, url: httpx.URL) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise DiscoveryError(
                f"{url} answered {declared} bytes, more than the {self.max_bytes} allowed",
                code="http_too_large",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise DiscoveryError(
                    f"{url} answered more than the {self.max_bytes} bytes allowed",
                    code="http_too_large",
                )
            chunks.append(chunk)
        return b"".join(chunks)
