"""Discovered settings are proven against real servers: the Dovecot test bed and SMTP server.

DNS names in these tests resolve through the local DNS server to 127.0.0.1; the test bed's
certificate is valid for ``mail.cadence.test``, ``localhost`` and ``127.0.0.1``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from discovery_helpers import Zones, client_config

from cadence.mail.discovery import DiscoveryOptions, discover, discover_for_check, verify_login
from cadence.mail.endpoints import ConnectOptions, Endpoint, Security
from cadence.testing.dovecot import DovecotServer
from cadence.testing.fixtures import TestMailbox
from cadence.testing.http_server import HttpTestServer, Reply
from cadence.testing.smtp_server import SMTPTestServer
from cadence.testing.stall import StallServer

Options = Callable[..., DiscoveryOptions]


def srv_zone(
    zones: Zones,
    domain: str,
    *,
    imaps: int | None = None,
    submission: int | None = None,
    imap: int | None = None,
    target: str = "mail.cadence.test",
) -> None:
    zones.local(target)
    if imaps:
        zones.add(f"_imaps._tcp.{domain}", "SRV", f"0 1 {imaps} {target}.")
    if imap:
        zones.add(f"_imap._tcp.{domain}", "SRV", f"0 1 {imap} {target}.")
    if submission:
        zones.add(f"_submission._tcp.{domain}", "SRV", f"0 1 {submission} {target}.")


async def test_srv_answer_is_probed_and_verified(
    zones: Zones, options: Options, mailbox: TestMailbox, smtp_server: SMTPTestServer
) -> None:
    srv_zone(zones, "cadence.test", imaps=mailbox.imaps_port, submission=smtp_server.starttls_port)
    result = await discover(mailbox.address, options=options(sources={"srv"}))
    (candidate,) = result.candidates
    assert candidate.verified
    imap, smtp = candidate.probe_imap, candidate.probe_smtp
    assert imap is not None and imap.status == "ok"
    # Dovecot lists UIDPLUS only after login: a probe without credentials cannot know.
    assert imap.uidplus is None and "checked when logging in" in imap.message
    assert imap.tls_version and imap.tls_version.startswith("TLSv1.")
    assert "IMAP4REV1" in imap.capabilities
    assert smtp is not None and smtp.status == "ok"
    assert "PLAIN" in smtp.auth_mechanisms
    as_json = candidate.as_dict()
    assert as_json["probe"]["imap"]["uidplus"] is None
    assert as_json["imap"] == {
        "host": "mail.cadence.test",
        "port": mailbox.imaps_port,
        "security": "tls",
    }


async def test_a_source_that_lies_is_caught_by_the_probe(
    zones: Zones,
    https_server: HttpTestServer,
    options: Options,
    dovecot_variant: Callable[[str], DovecotServer],
    dovecot: DovecotServer,
) -> None:
    """SRV says implicit TLS and autoconfig says STARTTLS, both on a plaintext-only server."""
    plain = dovecot_variant("plaintext")
    srv_zone(zones, "liar.test", imaps=plain.imap_port)
    zones.local("autoconfig.liar.test", "liar.test")
    https_server.route(
        "autoconfig.liar.test",
        "/mail/config-v1.1.xml",
        Reply(
            body=client_config(
                domain="liar.test", imap=[("mail.cadence.test", plain.imap_port, "STARTTLS")]
            )
        ),
    )
    # The honest answer, from a less trusted source, must still win.
    https_server.route(
        "liar.test",
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        Reply(
            body=client_config(
                domain="liar.test", imap=[("mail.cadence.test", dovecot.imaps_port, "SSL")]
            )
        ),
    )
    result = await discover(
        "rep@liar.test", options=options(sources={"srv", "autoconfig", "autoconfig-wellknown"})
    )
    by_source = {c.source: c for c in result.candidates}
    srv_probe = by_source["srv"].probe_imap
    assert srv_probe is not None and srv_probe.status == "failed"
    assert srv_probe.code in ("imap_tls_failed", "imap_timeout", "imap_connect_failed")
    starttls_probe = by_source["autoconfig"].probe_imap
    assert starttls_probe is not None and starttls_probe.code == "imap_insecure"
    assert result.candidates[0].source == "autoconfig-wellknown"
    assert result.candidates[0].verified
    assert result.best is result.candidates[0]


async def test_guesses_are_probed_on_the_standard_ports(
    zones: Zones, options: Options, dovecot: DovecotServer, smtp_server: SMTPTestServer
) -> None:
    zones.local("mail.cadence.test")
    zones.add("cadence.test", "MX", "10 mail.cadence.test.")
    # The probe connects to the address the test DNS gave and verifies the certificate
    # against the guessed host name, which the test bed's certificate names.
    opts = options(
        sources={"guess"},
        guess_imap=((dovecot.imaps_port, Security.TLS), (dovecot.imap_port, Security.STARTTLS)),
        guess_smtp=((smtp_server.tls_port, Security.TLS),),
    )
    result = await discover("rep@cadence.test", options=opts)
    (candidate,) = result.candidates
    assert candidate.source == "guess"
    assert candidate.imap is not None
    assert (candidate.imap.host, candidate.imap.port) == ("mail.cadence.test", dovecot.imaps_port)
    assert candidate.smtp is not None and candidate.smtp.port == smtp_server.tls_port
    assert candidate.verified


async def test_login_finds_a_server_without_uidplus_unsupported(
    zones: Zones, options: Options, dovecot_variant: Callable[[str], DovecotServer]
) -> None:
    no_uidplus = dovecot_variant("no_uidplus")
    srv_zone(zones, "cadence.test", imaps=no_uidplus.imaps_port)
    opts = options(sources={"srv"})
    result = await discover("rep@cadence.test", options=opts)
    (candidate,) = result.candidates
    assert candidate.probe_imap is not None and candidate.probe_imap.status == "ok"
    outcome = await verify_login(result, "correct horse battery staple", options=opts)
    assert outcome is not None
    assert outcome["imap"]["status"] == "failed"
    assert outcome["imap"]["code"] == "imap_uidplus_missing"
    assert outcome["imap"]["message"] == "IMAP Server is not supported"
    assert "UIDPLUS" in outcome["imap"]["reason"]


async def test_stalling_server_does_not_hold_discovery_past_its_budget(
    zones: Zones, options: Options, stall_server: StallServer
) -> None:
    srv_zone(zones, "stall.test", imaps=stall_server.port)
    started = time.monotonic()
    result = await discover("rep@stall.test", options=options(sources={"srv"}, timeout=2.0))
    assert time.monotonic() - started < 3.0
    (candidate,) = result.candidates
    assert candidate.probe_imap is not None and candidate.probe_imap.status == "failed"
    assert candidate.probe_imap.code in ("probe_timeout", "imap_timeout")


async def test_login_goes_only_to_trusted_hosts(
    zones: Zones, options: Options, mailbox: TestMailbox, smtp_server: SMTPTestServer
) -> None:
    srv_zone(zones, "cadence.test", imaps=mailbox.imaps_port, submission=smtp_server.starttls_port)
    opts = options(sources={"srv"})
    result = await discover(mailbox.address, options=opts)
    # mail.cadence.test is in the user's own domain: the password may go there.
    outcome = await verify_login(result, mailbox.password, options=opts)
    assert outcome is not None
    assert outcome["imap"]["status"] == "ok" and outcome["imap"]["uidplus"] is True
    assert outcome["smtp"]["status"] == "ok"
    assert result.candidates[0].as_dict()["login"] == outcome

    # The same servers named for another domain: not sent without --trust-host.
    srv_zone(zones, "other.test", imaps=mailbox.imaps_port)
    result = await discover("rep@other.test", options=options(sources={"srv"}))
    outcome = await verify_login(result, mailbox.password, options=opts)
    assert outcome is not None and outcome["imap"]["status"] == "skipped"
    assert outcome["imap"]["code"] == "untrusted_host"
    assert "--trust-host mail.cadence.test" in outcome["imap"]["hint"]


async def test_discover_for_check_gives_trusted_endpoints(
    zones: Zones, mailbox: TestMailbox, smtp_server: SMTPTestServer, ca_bundle: Path
) -> None:
    """The hook `cadence check --email` calls when no host is given."""
    srv_zone(zones, "cadence.test", imaps=mailbox.imaps_port, submission=smtp_server.starttls_port)
    found = await discover_for_check(
        mailbox.address, ConnectOptions(ca_file=str(ca_bundle)), dns=zones.address, timeout=5
    )
    assert found == (
        Endpoint("mail.cadence.test", mailbox.imaps_port, Security.TLS),
        Endpoint("mail.cadence.test", smtp_server.starttls_port, Security.STARTTLS),
    )
    # Hosts outside the user's domain are not handed to a check that sends the password...
    srv_zone(zones, "foreign.test", imaps=mailbox.imaps_port)
    opts = ConnectOptions(ca_file=str(ca_bundle))
    assert await discover_for_check("a@foreign.test", opts, dns=zones.address, timeout=5) is None
    # ...unless the user named them.
    found = await discover_for_check(
        "a@foreign.test", opts, dns=zones.address, timeout=5, trust_hosts=["mail.cadence.test"]
    )
    assert found is not None and found[0] is not None and found[1] is None


def test_check_with_only_an_address_discovers_and_checks(
    zones: Zones, mailbox: TestMailbox, smtp_server: SMTPTestServer, ca_bundle: Path
) -> None:
    """`cadence check --email ADDRESS` with no host: discovery finds the servers (here from
    SRV records served by the local DNS), the check resolves them through the same resolver
    and judges them."""
    import json

    from click.testing import CliRunner

    from cadence.cli import main
    from cadence.config import get_settings

    srv_zone(zones, "cadence.test", imaps=mailbox.imaps_port, submission=smtp_server.starttls_port)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            main,
            ["check", "--email", mailbox.address, "--ca-file", str(ca_bundle), "--json"],
            env={"CADENCE_DNS": zones.address, "CADENCE_PASSWORD": mailbox.password},
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    checks = {c["id"]: c for c in json.loads(result.output)["checks"]}
    assert checks["imap.connect"]["status"] == "pass"
    assert checks["imap.login"]["status"] == "pass"
    assert checks["imap.uidplus"]["status"] == "pass"
    assert checks["smtp.login"]["status"] == "pass"
    assert checks["imap.dns"]["message"].startswith("mail.cadence.test resolves to 127.0.0.1")
