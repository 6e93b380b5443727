"""Typed connection settings shared by the IMAP and SMTP layers, and the one place that
opens a TCP connection and makes it secure.

Cadence never sends a credential or a message over an unencrypted connection: an endpoint is
either implicit TLS (IMAP 993, SMTP 465 — RFC 8314) or STARTTLS (IMAP 143, SMTP 587/25), and a
STARTTLS endpoint whose server does not offer the upgrade is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import functools
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from cadence.errors import ConnectError, TLSError

Service = Literal["imap", "smtp"]


class Security(StrEnum):
    TLS = "tls"  # implicit TLS from the first byte
    STARTTLS = "starttls"  # plaintext greeting, then upgraded before any credential

    @classmethod
    def default_for_port(cls, port: int) -> Security:
        # RFC 8314 section 3: 993 and 465 are implicit TLS; 143, 587 and 25 use STARTTLS.
        return cls.STARTTLS if port in (143, 587, 25) else cls.TLS


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: Security

    @classmethod
    def parse(cls, host: str, port: int, security: str | Security | None = None) -> Endpoint:
        sec = Security(security) if security else Security.default_for_port(port)
        return cls(host, port, sec)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} ({self.security.value})"


@dataclass(frozen=True)
class ConnectOptions:
    """How to connect: which CAs to trust, how long to wait, which local address to use."""

    ca_file: str | None = None  # extra CA bundle (PEM); the system store is used otherwise
    timeout: float = 20.0
    source_address: str | None = None  # bind to this local address (multi-homed egress, tests)
    # Connect to this IP address instead of resolving the host; TLS is still verified against
    # the endpoint's host name (discovery probes an address a source named).
    connect_address: str | None = None
    # Resolve host names through this DNS server ("HOST:PORT") instead of the system resolver.
    resolver: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        return _ssl_context(self.ca_file)


# asyncio reads TLS into a buffer of SSLProtocol.max_size bytes per connection: 256 KiB since
# CPython 3.11.  A watcher holds one IMAP session per mailbox, and at 1,000 mailboxes that is
# 256 MB of buffers.  A TLS record carries at most 16 KiB of plaintext (RFC 8446 section 5.1),
# so a 16 KiB buffer loses nothing but a few extra read calls on large FETCHes
# (bench/imap_client_choice.py measures the difference).
TLS_READ_BUFFER = 16 * 1024
if getattr(asyncio.sslproto.SSLProtocol, "max_size", 0) > TLS_READ_BUFFER:
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


@functools.lru_cache(maxsize=16)
def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """One context per CA choice, shared by every connection: loading the system CA store
    costs hundreds of KB per context, which a watcher holding 1,000 sessions cannot afford."""
    # Verification is always on: a custom CA file is the only way to trust another CA.
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str | None = field(default=None, repr=False)
    oauth2_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never show a secret, even in a traceback
        return f"Credentials(username={self.username!r}, secret=***)"


@dataclass(frozen=True)
class TLSInfo:
    version: str
    cipher: str
    peer_subject: str | None
    peer_issuer: str | None
    not_after: str | None

    @classmethod
    def from_ssl_object(cls, obj: ssl.SSLObject | ssl.SSLSocket | None) -> TLSInfo | None:
        if obj is None:
            return None
        cert = obj.getpeercert() or {}

        def name(key: str) -> str | None:
            value = cert.get(key)
            if not value:
                return None
            parts = [f"{pair[0]}={pair[1]}" for rdn in value for pair in rdn]
            return ", ".join(parts)

        cipher = obj.cipher()
        return cls(
            version=obj.version() or "unknown",
            cipher=cipher[0] if cipher else "unknown",
            peer_subject=name("subject"),
            peer_issuer=name("issuer"),
            not_after=str(cert.get("notAfter")) if cert.get("notAfter") else None,
        )


async def resolve(
    host: str, port: int, service: Service, timeout: float, resolver: str | None = None
) -> list[str]:
    """Resolve a host name; a failure is reported as DNS, distinct from a refused connection."""
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    if resolver:
        return await _resolve_with(resolver, host, service, timeout)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except TimeoutError as exc:
        raise ConnectError(
            f"DNS lookup of {host} timed out after {timeout:g}s",
            code=f"{service}_dns_failed",
            hint="Check the host name and this machine's DNS resolver.",
        ) from exc
    except socket.gaierror as exc:
        raise ConnectError(
            f"{host} does not resolve: {exc.strerror}",
            code=f"{service}_dns_failed",
            hint="Check the spelling of the host name; ask IT for the mail server's name.",
        ) from exc
    addresses: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in addresses:
            addresses.append(addr)
    return addresses


async def _resolve_with(resolver: str, host: str, service: Service, timeout: float) -> list[str]:
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    server, _, port = resolver.rpartition(":")
    res = dns.asyncresolver.Resolver(configure=False)
    res.nameservers = [server or resolver]
    res.port = int(port) if port.isdigit() else 53
    res.lifetime = timeout
    addresses: list[str] = []
    nxdomain = False
    for rdtype in ("A", "AAAA"):
        try:
            answer = await res.resolve(host, rdtype)
        except dns.resolver.NXDOMAIN:
            nxdomain = True
            break
        except (dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            continue
        except dns.exception.Timeout as exc:
            raise ConnectError(
                f"DNS lookup of {host} timed out after {timeout:g}s",
                code=f"{service}_dns_failed",
                hint="Check the DNS resolver setting (CADENCE_DNS).",
            ) from exc
        addresses.extend(r.to_text() for r in answer)
    if not addresses:
        why = "does not exist (NXDOMAIN)" if nxdomain else "has no address records"
        raise ConnectError(
            f"{host} {why}",
            code=f"{service}_dns_failed",
            hint="Check the spelling of the host name; ask IT for the mail server's name.",
        )
    return addresses


async def open_socket(
    endpoint: Endpoint, options: ConnectOptions, service: Service
) -> socket.socket:
    """Resolve and connect (each address in turn), from ``source_address`` when given.

    Returns a connected non-blocking socket; TLS is layered on by the caller, verified against
    ``endpoint.host`` whatever address was connected to."""
    if options.connect_address:
        addresses = [options.connect_address]
    else:
        addresses = await resolve(
            endpoint.host, endpoint.port, service, options.timeout, options.resolver
        )
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        v6_source = ":" in (options.source_address or "")
        if options.source_address and v6_source != (family == socket.AF_INET6):
            continue
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if options.source_address:
                sock.bind((options.source_address, 0))
            await asyncio.wait_for(
                loop.sock_connect(sock, (address, endpoint.port)), options.timeout
            )
            return sock
        except OSError as exc:  # TimeoutError included
            sock.close()
            last = exc
    raise connect_error(last or OSError("no usable address"), endpoint, service, options.timeout)


def tls_error(exc: ssl.SSLError, host: str, service: Service) -> TLSError:
    """Name each certificate problem distinctly: the fix differs for each."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        verify_code = exc.verify_code
        reason = exc.verify_message or str(exc)
        if verify_code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return TLSError(
                f"The certificate of {host} has expired",
                code=f"{service}_tls_expired",
                hint="The mail server's administrator must renew its TLS certificate.",
                detail={"verify_code": verify_code, "reason": reason},
            )
        if verify_code == 9:  # X509_V_ERR_CERT_NOT_YET_VALID
            return TLSError(
                f"The certificate of {host} is not valid yet",
                code=f"{service}_tls_not_yet_valid",
                hint="Check the clocks of this machine and the server.",
                detail={"verify_code": verify_code, "reason": reason},
            )
        if verify_code in (18, 19):  # self-signed leaf / self-signed root in chain
            return TLSError(
                f"The certificate of {host} is self-signed",
                code=f"{service}_tls_self_signed",
                hint=(
                    "Install a certificate from a public CA on the server, or pass the "
                    "organisation's CA with --ca-file."
                ),
                detail={"verify_code": verify_code, "reason": reason},
            )
        if verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return TLSError(
                f"The certificate presented by {host} is for another host name",
                code=f"{service}_tls_wrong_host",
                hint=(
                    "Connect with the host name the certificate names (ask IT), or have the "
                    "certificate reissued to include this name."
                ),
                detail={"verify_code": verify_code, "reason": reason},
            )
        return TLSError(
            f"The certificate of {host} is not trusted: {reason}",
            code=f"{service}_tls_untrusted",
            hint="Pass the CA that issued the server's certificate with --ca-file.",
            detail={"verify_code": verify_code, "reason": reason},
        )
    return TLSError(
        f"TLS handshake with {host} failed: {exc.reason or exc}",
        code=f"{service}_tls_failed",
        hint="The server may require a TLS version or cipher Cadence does not allow (TLS 1.2+).",
        detail={"reason": str(exc.reason or exc)},
    )


def connect_error(
    exc: OSError, endpoint: Endpoint, service: Service, timeout: float
) -> ConnectError:
    if isinstance(exc, TimeoutError):
        return ConnectError(
            f"Connecting to {endpoint.host}:{endpoint.port} timed out after {timeout:g}s",
            code=f"{service}_timeout",
            hint="A firewall may be dropping the connection: ask IT to open this port outbound.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(
            f"{endpoint.host} refused the connection on port {endpoint.port}",
            code=f"{service}_connect_refused",
            hint="Check the port number; the service may not listen there.",
        )
    return ConnectError(
        f"Cannot connect to {endpoint.host}:{endpoint.port}: {exc.strerror or exc}",
        code=f"{service}_connect_failed",
        hint="Check the host, the port and the network path from this machine.",
    )
