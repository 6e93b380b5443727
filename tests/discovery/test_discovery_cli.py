"""``cadence discover`` end to end through the CLI, on loopback only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from discovery_helpers import Zones

from cadence.cli import main
from cadence.testing.fixtures import TestMailbox
from cadence.testing.smtp_server import SMTPTestServer


@pytest.fixture
def run(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"CADENCE_HOME": str(tmp_path), "CADENCE_DNS": None})


def test_mx_at_microsoft_returns_microsoft_365_without_internet(
    zones: Zones, run: CliRunner
) -> None:
    zones.add("fabrikam-corp.test", "MX", "0 fabrikam-corp-test.mail.protection.outlook.com.")
    result = run.invoke(
        main,
        [
            "discover",
            "someone@fabrikam-corp.test",
            "--json",
            "--dns",
            zones.address,
            "--timeout",
            "4",
        ],
    )
    out = json.loads(result.output)
    assert set(out) >= {"address", "candidates", "elapsed_s"}
    assert out["address"] == "someone@fabrikam-corp.test"
    best = out["candidates"][0]
    assert best["source"] == "mx-provider"
    assert best["provider"] == "Microsoft 365 (Exchange Online)"
    assert best["imap"] == {"host": "outlook.office365.com", "port": 993, "security": "tls"}
    assert best["smtp"] == {"host": "smtp.office365.com", "port": 587, "security": "starttls"}
    assert best["username"] == "someone@fabrikam-corp.test"
    assert best["auth"] == ["oauth2"]
    # Probed, honestly failing: this machine has no route to Microsoft in the test.
    assert best["probe"]["imap"]["status"] == "failed"
    assert best["probe"]["smtp"]["status"] == "failed"
    assert out["elapsed_s"] < 5
    assert result.exit_code == 1  # found, but not verified


def test_mx_at_google_via_cadence_dns_env(zones: Zones, tmp_path: Path) -> None:
    zones.add("g-shop.test", "MX", "1 aspmx.l.google.com.")
    runner = CliRunner(env={"CADENCE_HOME": str(tmp_path), "CADENCE_DNS": zones.address})
    result = runner.invoke(main, ["discover", "a@g-shop.test", "--json", "--timeout", "3"])
    best = json.loads(result.output)["candidates"][0]
    assert best["provider"] == "Google Workspace / Gmail"
    assert best["imap"]["host"] == "imap.gmail.com"
    assert best["smtp"] == {"host": "smtp.gmail.com", "port": 465, "security": "tls"}


def test_verified_settings_and_login_with_password_env(
    zones: Zones,
    run: CliRunner,
    mailbox: TestMailbox,
    smtp_server: SMTPTestServer,
    ca_bundle: Path,
) -> None:
    zones.local("mail.cadence.test")
    zones.add("_imaps._tcp.cadence.test", "SRV", f"0 1 {mailbox.imaps_port} mail.cadence.test.")
    zones.add(
        "_submission._tcp.cadence.test",
        "SRV",
        f"0 1 {smtp_server.starttls_port} mail.cadence.test.",
    )
    args = [
        "discover",
        mailbox.address,
        "--dns",
        zones.address,
        "--ca-file",
        str(ca_bundle),
        "--timeout",
        "5",
        "--ispdb-url",
        "",
    ]
    result = run.invoke(main, [*args, "--password-env", "MY_PW"], env={"MY_PW": mailbox.password})
    assert result.exit_code == 0, result.output
    assert "[verified] from srv" in result.output
    assert f"mail.cadence.test:{mailbox.imaps_port} TLS" in result.output
    assert "Login IMAP: ok" in result.output
    assert "Login SMTP: ok" in result.output
    assert mailbox.password not in result.output

    result = run.invoke(main, [*args, "--json"])
    out = json.loads(result.output)
    assert out["candidates"][0]["probe"]["imap"]["status"] == "ok"
    assert out["candidates"][0]["verified"] is True
    assert result.exit_code == 0


def test_password_only_to_trusted_hosts(
    zones: Zones, run: CliRunner, mailbox: TestMailbox, ca_bundle: Path
) -> None:
    zones.local("mail.cadence.test")
    zones.add("_imaps._tcp.elsewhere.test", "SRV", f"0 1 {mailbox.imaps_port} mail.cadence.test.")
    args = [
        "discover",
        "rep@elsewhere.test",
        "--dns",
        zones.address,
        "--ca-file",
        str(ca_bundle),
        "--timeout",
        "5",
        "--ispdb-url",
        "",
        "--json",
        "--password-env",
        "MY_PW",
        # A failed login makes Dovecot slow down its source address: use one of our own.
        "--source-address",
        "127.0.0.3",
    ]
    result = run.invoke(main, args, env={"MY_PW": "correct horse battery staple"})
    login = json.loads(result.output)["candidates"][0]["login"]
    assert login["imap"]["code"] == "untrusted_host"
    assert result.exit_code == 1
    result = run.invoke(
        main,
        [*args, "--trust-host", "mail.cadence.test"],
        env={"MY_PW": "correct horse battery staple"},
    )
    login = json.loads(result.output)["candidates"][0]["login"]
    # Sent now; rep@elsewhere.test is not a user of the test bed, so the login fails.
    assert login["imap"]["status"] == "failed"
    assert login["imap"]["code"] == "imap_auth_failed"


def test_usage_errors(run: CliRunner) -> None:
    result = run.invoke(main, ["discover", "not-an-address", "--dns", "127.0.0.1:1"])
    assert result.exit_code == 2
    assert "not an email address" in result.output
    result = run.invoke(main, ["discover", "a@b.test", "--dns", "nonsense:port"])
    assert result.exit_code == 2
    result = run.invoke(main, ["discover", "a@b.test", "--password-env", "UNSET_VAR_X"])
    assert result.exit_code == 2
