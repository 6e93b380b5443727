"""pytest fixtures for the mail test bed.

Load them with ``pytest_plugins = ["cadence.testing.fixtures"]`` in a root conftest.

Servers are started once per test session and only when a test asks for them.  Each test gets
its own mailbox user (``mailbox`` fixture), so tests never see each other's mail.

Under ``CI=true`` a missing Dovecot is a failure, never a skip.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cadence.testing.certs import TestCertificates, make_certificates
from cadence.testing.dovecot import (
    DEFAULT_PASSWORD,
    EXCHANGE_CAPABILITY,
    EXCHANGE_GREETING,
    NO_UIDPLUS_CAPABILITY,
    OLD_EXCHANGE_CAPABILITY,
    OLD_EXCHANGE_GREETING,
    DovecotConfig,
    DovecotServer,
    dovecot_binary,
)
from cadence.testing.smtp_server import SMTPTestServer
from cadence.testing.stall import StallServer

_counter = itertools.count(1)


def require_server(what: str) -> None:
    """Skip locally, fail in CI: CI must never silently skip a real-server test."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI but is not available", pytrace=False)
    pytest.skip(f"{what} is not available")


@dataclass(frozen=True)
class TestMailbox:
    """One throwaway mailbox on the test bed, with everything needed to connect to it."""

    __test__ = False  # not a test class, despite its name

    address: str
    password: str
    host: str
    imaps_port: int
    imap_port: int
    smtp_starttls_port: int
    smtp_tls_port: int
    ca_file: Path
    dovecot: DovecotServer
    smtp: SMTPTestServer | None


# Variants of the server, by name: what a test asks ``dovecot_variant`` for.
def _variant_config(name: str, certs: TestCertificates) -> DovecotConfig:
    match name:
        case "standard":
            return DovecotConfig(name, cert=certs.good)
        case "no_uidplus":
            return DovecotConfig(name, cert=certs.good, imap_capability=NO_UIDPLUS_CAPABILITY)
        case "exchange":
            return DovecotConfig(
                name,
                cert=certs.good,
                imap_capability=EXCHANGE_CAPABILITY,
                login_greeting=EXCHANGE_GREETING,
            )
        case "old_exchange":
            return DovecotConfig(
                name,
                cert=certs.good,
                imap_capability=OLD_EXCHANGE_CAPABILITY,
                login_greeting=OLD_EXCHANGE_GREETING,
            )
        case "plaintext":
            return DovecotConfig(name, cert=None)
        case "expired" | "wrong_host" | "self_signed":
            return DovecotConfig(name, cert=certs.by_name(name))
    raise ValueError(f"unknown Dovecot variant {name!r}")


@pytest.fixture(scope="session")
def test_certs() -> TestCertificates:
    return make_certificates(Path(tempfile.mkdtemp(prefix="cadence-certs-")))


@pytest.fixture(scope="session")
def dovecot_variant(
    test_certs: TestCertificates,
) -> Iterator[Callable[[str], DovecotServer]]:
    """``dovecot_variant("exchange")``: a started Dovecot of that variant, shared in the session."""
    if dovecot_binary() is None:
        require_server("Dovecot (apt-get install dovecot-imapd dovecot-lmtpd)")
    started: dict[str, DovecotServer] = {}

    def get(name: str) -> DovecotServer:
        if name not in started:
            server = DovecotServer(_variant_config(name, test_certs))
            server.add_user("rep@cadence.test", DEFAULT_PASSWORD)
            started[name] = server.start()
        return started[name]

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture(scope="session")
def dovecot(dovecot_variant: Callable[[str], DovecotServer]) -> DovecotServer:
    return dovecot_variant("standard")


@pytest.fixture(scope="session")
def smtp_server(dovecot: DovecotServer, test_certs: TestCertificates) -> Iterator[SMTPTestServer]:
    server = SMTPTestServer(dovecot, test_certs.good, str(test_certs.ca_file)).start()
    yield server
    server.stop()


@pytest.fixture
def new_mailbox(
    dovecot: DovecotServer, smtp_server: SMTPTestServer, test_certs: TestCertificates
) -> Callable[..., TestMailbox]:
    """Factory: ``new_mailbox("alice")`` creates a fresh user on the standard test bed."""

    def make(local: str = "user", domain: str = "cadence.test") -> TestMailbox:
        address = f"{local}{next(_counter)}-{os.getpid()}@{domain}"
        dovecot.add_user(address, DEFAULT_PASSWORD)
        return TestMailbox(
            address=address,
            password=DEFAULT_PASSWORD,
            host="localhost",
            imaps_port=dovecot.imaps_port,
            imap_port=dovecot.imap_port,
            smtp_starttls_port=smtp_server.starttls_port,
            smtp_tls_port=smtp_server.tls_port,
            ca_file=test_certs.ca_file,
            dovecot=dovecot,
            smtp=smtp_server,
        )

    return make


@pytest.fixture
def mailbox(new_mailbox: Callable[..., TestMailbox]) -> TestMailbox:
    return new_mailbox("rep")


@pytest.fixture
def stall_server() -> Iterator[StallServer]:
    server = StallServer().start()
    yield server
    server.stop()
