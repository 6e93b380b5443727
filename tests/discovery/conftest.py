"""Fixtures for discovery tests: a local DNS server, local HTTPS and HTTP servers.

Everything is on loopback.  The DNS server answers for the test zones each test adds (and
removes afterwards); the HTTPS server presents, for any name asked, a certificate from a
throwaway trustme CA; ``ca_bundle`` trusts that CA and the test bed's (Dovecot, SMTP) CA, so
one ``ca_file`` serves both https fetches and IMAP/SMTP probes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from discovery_helpers import ISPDB_HOST, Zones

from cadence.mail.autoconfig import IspdbCache
from cadence.mail.discovery import DiscoveryOptions
from cadence.testing.certs import TestCertificates
from cadence.testing.dns_server import DnsTestServer
from cadence.testing.http_server import HttpTestServer, sni_context


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsTestServer]:
    server = DnsTestServer().start()
    server.add(ISPDB_HOST, "A", "127.0.0.1")
    yield server
    server.stop()


@pytest.fixture
def zones(dns_server: DnsTestServer) -> Iterator[Zones]:
    z = Zones(dns_server)
    yield z
    z.cleanup()


@pytest.fixture(scope="session")
def http_ca() -> trustme.CA:
    return trustme.CA(organization_name="Cadence discovery test CA")


@pytest.fixture(scope="session")
def ca_bundle(http_ca: trustme.CA, test_certs: TestCertificates) -> Path:
    path = Path(tempfile.mkdtemp(prefix="cadence-disco-ca-")) / "bundle.pem"
    path.write_bytes(http_ca.cert_pem.bytes() + b"\n" + test_certs.ca_file.read_bytes())
    return path


@pytest.fixture(scope="session")
def https_server_session(http_ca: trustme.CA) -> Iterator[HttpTestServer]:
    server = HttpTestServer(tls=sni_context(http_ca)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_server_session() -> Iterator[HttpTestServer]:
    server = HttpTestServer(tls=None).start()
    yield server
    server.stop()


@pytest.fixture
def https_server(https_server_session: HttpTestServer) -> Iterator[HttpTestServer]:
    yield https_server_session
    https_server_session.clear()


@pytest.fixture
def http_server(http_server_session: HttpTestServer) -> Iterator[HttpTestServer]:
    yield http_server_session
    http_server_session.clear()


@pytest.fixture
def options(
    zones: Zones, ca_bundle: Path, https_server: HttpTestServer, http_server: HttpTestServer
) -> Callable[..., DiscoveryOptions]:
    """``options(timeout=3, sources={...}, probe=False)``: DiscoveryOptions for local servers."""

    def make(**kwargs: Any) -> DiscoveryOptions:
        base: dict[str, Any] = {
            "dns": zones.address,
            "ca_file": str(ca_bundle),
            "https_port": https_server.port,
            "http_port": http_server.port,
            "ispdb_url": f"https://{ISPDB_HOST}/v1.1/",
            "ispdb_cache": IspdbCache(),
            "timeout": 5.0,
        }
        if "sources" in kwargs and kwargs["sources"] is not None:
            kwargs["sources"] = frozenset(kwargs["sources"])
        base.update(kwargs)
        return DiscoveryOptions(**base)

    return make
