"""`cadence check` against real servers: every requirement, passing and failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cadence.cli import main
from cadence.testing.certs import TestCertificates
from cadence.testing.dovecot import DEFAULT_PASSWORD, DovecotServer
from cadence.testing.fixtures import TestMailbox
from cadence.testing.smtp_server import SMTPTestServer
from cadence.testing.stall import StallServer

USER = "rep@cadence.test"


def run_check(*args: str, password: str | None = DEFAULT_PASSWORD) -> tuple[int, dict[str, Any]]:
    env = {"CADENCE_PASSWORD": password} if password else {"CADENCE_PASSWORD": ""}
    result = CliRunner().invoke(main, ["check", *args, "--json", "--timeout", "5"], env=env)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


def imap_args(server: DovecotServer, certs: TestCertificates, *, tls: bool = True) -> list[str]:
    port = server.imaps_port if tls else server.imap_port
    security = "tls" if tls else "starttls"
    return ["--email", USER, "--imap-host", "localhost", "--imap-port", str(port),
            "--imap-security", security, "--ca-file", str(certs.ca_file)]


def smtp_args(smtp: SMTPTestServer, *, tls: bool = False) -> list[str]:
    port = smtp.tls_port if tls else smtp.starttls_port
    return ["--smtp-host", "localhost", "--smtp-port", str(port),
            "--smtp-security", "tls" if tls else "starttls"]


# -- a good mailbox ---------------------------------------------------------------------------


def test_good_mailbox_passes_with_stable_json_shape(
    mailbox: TestMailbox, smtp_server: SMTPTestServer, test_certs: TestCertificates
) -> None:
    code, report = run_check(
        "--email", mailbox.address, "--imap-host", "localhost",
        "--imap-port", str(mailbox.imaps_port), "--imap-security", "tls",
        "--smtp-host", "localhost", "--smtp-port", str(mailbox.smtp_starttls_port),
        "--smtp-security", "starttls", "--ca-file", str(test_certs.ca_file),
    )
    assert code == 0 and report["ok"] is True
    assert set(report) == {"ok", "checks"}
    for c in report["checks"]:
        assert set(c) == {"id", "service", "status", "code", "message", "hint", "detail"}
        assert c["service"] in ("imap", "smtp")
        assert c["status"] in ("pass", "fail", "warn", "info")
    checks = by_id(report)
    assert checks["imap.uidplus"]["status"] == "pass"
    assert checks["imap.tls"]["detail"]["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert checks["imap.login"]["status"] == "pass"
    assert checks["smtp.login"]["status"] == "pass"
    assert checks["imap.idle"]["status"] == "pass"
    assert checks["imap.sent_folder"]["detail"] == {"folder": "Sent", "found_by": "flag"}
    assert checks["imap.junk_folder"]["detail"]["folder"] == "Junk"
    assert checks["imap.move"]["detail"]["supported"] is True
    assert checks["smtp.size"]["detail"]["size_limit"] == 20 * 1024 * 1024
    # Capabilities are re-read after login: Dovecot lists UIDPLUS only then.
    assert "UIDPLUS" not in checks["imap.capabilities_before_login"]["detail"]["capabilities"]
    assert "UIDPLUS" in checks["imap.capabilities"]["detail"]["changed_after_login"]
    assert "PLAIN" in checks["smtp.extensions"]["detail"]["auth_mechanisms"]
    assert checks["imap.egress"]["detail"]["local_address"] == "127.0.0.1"


def test_send_test_round_trip_removes_only_its_own_message(
    mailbox: TestMailbox, test_certs: TestCertificates
) -> None:
    existing = b"Subject: keep me\r\nMessage-ID: <keep@cadence.test>\r\n\r\nkeep\r\n"
    mailbox.dovecot.deliver(mailbox.address, existing)
    code, report = run_check(
        "--email", mailbox.address, "--imap-host", "localhost",
        "--imap-port", str(mailbox.imaps_port), "--smtp-host", "localhost",
        "--smtp-port", str(mailbox.smtp_tls_port), "--smtp-security", "tls",
        "--ca-file", str(test_certs.ca_file), "--send-test",
    )
    checks = by_id(report)
    assert code == 0, report
    assert checks["smtp.send_test"]["status"] == "pass"
    assert checks["imap.receive_test"]["status"] == "pass"
    inbox = mailbox.dovecot.maildir(mailbox.address)
    files = list((inbox / "cur").iterdir()) + list((inbox / "new").iterdir())
    assert len(files) == 1 and b"keep me" in files[0].read_bytes()


def test_imap_alone_is_a_valid_check(dovecot: DovecotServer, test_certs: TestCertificates) -> None:
    code, report = run_check(*imap_args(dovecot, test_certs))
    assert code == 0
    assert {c["service"] for c in report["checks"]} == {"imap"}


def test_starttls_on_imap_is_accepted_with_a_warning(
    dovecot: DovecotServer, test_certs: TestCertificates
) -> None:
    code, report = run_check(*imap_args(dovecot, test_certs, tls=False))
    checks = by_id(report)
    assert code == 0
    assert checks["imap.security"]["status"] == "warn"
    assert checks["imap.security"]["code"] == "imap_starttls"
    assert checks["imap.login"]["status"] == "pass"


# -- refusals before any credential -----------------------------------------------------------


def test_plaintext_imap_is_refused_before_credentials(
    dovecot_variant: Callable[[str], DovecotServer], test_certs: TestCertificates
) -> None:
    server = dovecot_variant("plaintext")
    log_before = server.log_text()
    code, report = run_check(
        "--email", USER, "--imap-host", "localhost", "--imap-port", str(server.imap_port),
        "--imap-security", "starttls", "--ca-file", str(test_certs.ca_file),
    )
    checks = by_id(report)
    assert code == 1 and report["ok"] is False
    assert checks["imap.security"]["status"] == "fail"
    assert checks["imap.security"]["code"] == "imap_insecure"
    assert "imap.login" not in checks
    time.sleep(0.3)
    new_log = server.log_text()[len(log_before):]
    assert "rip=127.0.0.1" in new_log  # Dovecot saw the connection ...
    assert "no auth attempts" in new_log  # ... and no login attempt on it
    assert f"user=<{USER}>" not in new_log


@pytest.fixture
def smtp_without_starttls(
    dovecot: DovecotServer, test_certs: TestCertificates
) -> Iterator[SMTPTestServer]:
    server = SMTPTestServer(
        dovecot, test_certs.good, str(test_certs.ca_file), offer_starttls=False
    ).start()
    yield server
    server.stop()


def test_smtp_without_starttls_is_refused_before_credentials(
    smtp_without_starttls: SMTPTestServer,
) -> None:
    code, report = run_check("--email", USER, *smtp_args(smtp_without_starttls))
    checks = by_id(report)
    assert code == 1
    assert checks["smtp.security"]["code"] == "smtp_insecure"
    assert checks["smtp.security"]["status"] == "fail"
    assert smtp_without_starttls.authenticator is not None
    assert smtp_without_starttls.authenticator.attempts == 0


# -- certificates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "code"),
    [
        ("expired", "imap_tls_expired"),
        ("wrong_host", "imap_tls_wrong_host"),
        ("self_signed", "imap_tls_self_signed"),
    ],
)
def test_bad_certificates_are_named_distinctly(
    dovecot_variant: Callable[[str], DovecotServer],
    test_certs: TestCertificates,
    variant: str,
    code: str,
) -> None:
    server = dovecot_variant(variant)
    exit_code, report = run_check(*imap_args(server, test_certs))
    checks = by_id(report)
    assert exit_code == 1
    assert checks["imap.tls"]["status"] == "fail"
    assert checks["imap.tls"]["code"] == code
    assert checks["imap.tls"]["hint"]
    assert "imap.login" not in checks


def test_system_trust_store_rejects_the_test_ca(dovecot: DovecotServer) -> None:
    """No silent insecure mode: without --ca-file the throwaway CA is not trusted."""
    code, report = run_check("--email", USER, "--imap-host", "localhost",
                             "--imap-port", str(dovecot.imaps_port))
    assert code == 1
    assert by_id(report)["imap.tls"]["code"] in ("imap_tls_untrusted", "imap_tls_self_signed")


def test_expired_smtp_certificate(
    dovecot: DovecotServer, test_certs: TestCertificates
) -> None:
    server = SMTPTestServer(dovecot, test_certs.expired, str(test_certs.ca_file)).start()
    try:
        code, report = run_check("--email", USER, *smtp_args(server, tls=True),
                                 "--ca-file", str(test_certs.ca_file))
    finally:
        server.stop()
    assert code == 1
    assert by_id(report)["smtp.tls"]["code"] == "smtp_tls_expired"


# -- server identity and UIDPLUS --------------------------------------------------------------


def test_missing_uidplus_fails_with_the_product_message(
    dovecot_variant: Callable[[str], DovecotServer], test_certs: TestCertificates
) -> None:
    server = dovecot_variant("no_uidplus")
    code, report = run_check(*imap_args(server, test_certs))
    check = by_id(report)["imap.uidplus"]
    assert code == 1
    assert check["status"] == "fail"
    assert check["code"] == "imap_uidplus_missing"
    assert check["message"].startswith("IMAP Server is not supported")
    assert "does not advertise UIDPLUS" in check["message"]
    assert "enable" in check["hint"].lower()


def test_exchange_2010_sp1_or_newer_is_recognised_and_accepted(
    dovecot_variant: Callable[[str], DovecotServer], test_certs: TestCertificates
) -> None:
    server = dovecot_variant("exchange")
    code, report = run_check(*imap_args(server, test_certs))
    checks = by_id(report)
    assert code == 0, report
    assert checks["imap.server"]["detail"]["product"] == "Microsoft Exchange"
    assert checks["imap.uidplus"]["status"] == "pass"
    assert "NTLM" in checks["imap.capabilities_before_login"]["detail"]["auth_mechanisms"]
    # Exchange has no SPECIAL-USE: the Sent folder is still found.
    assert checks["imap.special_use"]["detail"]["supported"] is False


def test_old_exchange_is_named_and_refused(
    dovecot_variant: Callable[[str], DovecotServer], test_certs: TestCertificates
) -> None:
    server = dovecot_variant("old_exchange")
    code, report = run_check(*imap_args(server, test_certs))
    checks = by_id(report)
    assert code == 1
    assert checks["imap.server"]["status"] == "fail"
    assert checks["imap.server"]["code"] == "imap_exchange_too_old"
    assert checks["imap.server"]["message"].startswith("IMAP Server is not supported")
    assert "Exchange 2007" in checks["imap.server"]["message"]
    assert "2010 SP1" in checks["imap.server"]["message"]
    assert checks["imap.uidplus"]["status"] == "fail"


# -- timeouts and login -----------------------------------------------------------------------


def test_a_server_that_stalls_is_a_timeout_not_a_hang(
    stall_server: StallServer, test_certs: TestCertificates
) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(main, [
        "check", "--email", USER, "--imap-host", "127.0.0.1", "--imap-port",
        str(stall_server.port), "--imap-security", "tls", "--smtp-host", "127.0.0.1",
        "--smtp-port", str(stall_server.port), "--smtp-security", "starttls",
        "--timeout", "1.5", "--json"], env={"CADENCE_PASSWORD": "x"})
    elapsed = time.monotonic() - started
    report = json.loads(result.output)
    checks = by_id(report)
    assert result.exit_code == 1
    assert checks["imap.connect"]["code"] == "imap_timeout"
    assert checks["smtp.connect"]["code"] == "smtp_timeout"
    assert elapsed < 10  # both time out after ~1.5 s, concurrently


def test_wrong_password_is_told_apart(
    dovecot: DovecotServer, smtp_server: SMTPTestServer, test_certs: TestCertificates
) -> None:
    # Dovecot slows logins from an address after a failure: use a loopback address of our own.
    code, report = run_check(*imap_args(dovecot, test_certs), *smtp_args(smtp_server),
                             "--source-address", "127.0.0.3", password="wrong password")
    checks = by_id(report)
    assert code == 1
    assert checks["imap.login"]["code"] == "imap_auth_failed"
    assert checks["imap.login"]["detail"]["cause"] == "bad_credentials"
    assert checks["smtp.login"]["code"] == "smtp_auth_failed"
    assert checks["smtp.login"]["detail"]["cause"] == "bad_credentials"
    assert "wrong password" not in json.dumps(report)  # the secret never appears


def test_smtp_auth_disabled_by_the_provider(
    dovecot: DovecotServer, test_certs: TestCertificates
) -> None:
    server = SMTPTestServer(dovecot, test_certs.good, str(test_certs.ca_file)).start()
    server.refuse_auth_with(
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
        "the Tenant."
    )
    try:
        code, report = run_check("--email", USER, *smtp_args(server),
                                 "--ca-file", str(test_certs.ca_file))
    finally:
        server.stop()
    check = by_id(report)["smtp.login"]
    assert code == 1
    assert check["code"] == "smtp_auth_failed"
    assert check["detail"]["cause"] == "method_disabled"
    assert check["detail"]["enhanced"] == "5.7.139"
    assert "SMTP AUTH" in check["hint"]


def test_no_password_skips_login_with_a_warning(
    dovecot: DovecotServer, test_certs: TestCertificates
) -> None:
    code, report = run_check(*imap_args(dovecot, test_certs), password=None)
    checks = by_id(report)
    assert checks["imap.login"]["status"] == "warn"
    assert checks["imap.uidplus"]["code"] == "imap_uidplus_unknown"
    assert code == 0


def test_password_from_stdin(dovecot: DovecotServer, test_certs: TestCertificates) -> None:
    result = CliRunner().invoke(
        main, ["check", *imap_args(dovecot, test_certs), "--password-stdin", "--json"],
        input=DEFAULT_PASSWORD + "\n", env={"CADENCE_PASSWORD": ""},
    )
    assert result.exit_code == 0, result.output
    assert by_id(json.loads(result.output))["imap.login"]["status"] == "pass"


# -- usage and the real console script --------------------------------------------------------


def test_usage_errors_exit_2() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["check"]).exit_code == 2
    assert runner.invoke(main, ["check", "--email", "x@y", "--password", "p"]).exit_code == 2
    assert runner.invoke(main, ["check", "--email", "not-an-address",
                                "--imap-host", "localhost"]).exit_code == 2


def test_console_script_and_reports(
    dovecot_variant: Callable[[str], DovecotServer],
    test_certs: TestCertificates,
    tmp_path: Path,
) -> None:
    server = dovecot_variant("no_uidplus")
    html = tmp_path / "report.html"
    text = tmp_path / "report.txt"
    env = {**os.environ, "CADENCE_PASSWORD": DEFAULT_PASSWORD,
           "CADENCE_EGRESS_ADDRESSES": "203.0.113.0/28"}
    for path in (html, text):
        proc = subprocess.run(
            [sys.executable, "-m", "cadence", "check", *imap_args(server, test_certs),
             "--report", str(path)],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert "IMAP Server is not supported" in proc.stdout
    page = html.read_text()
    assert "<table" in page and "@media print" in page
    assert "UIDPLUS" in page and "IMAP Server is not supported" in page
    assert "203.0.113.0/28" in page and "127.0.0.1" in page
    assert "does not meet" in page
    plain = text.read_text()
    assert "[FAIL] UIDPLUS" in plain
    assert "ADDRESSES TO ALLOW: 127.0.0.1, 203.0.113.0/28" in plain
