"""The CLI commands' contracts: refusals, validation reports, all-or-nothing imports, preview,
and a graceful stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from cadence.testing.fixtures import TestMailbox

from .helpers import cadence, cli_env, mailbox_options

YAML = """\
name: intro
steps:
  - subject: "Quick question, {{ first_name | default('there') }}"
    body: "Hi {{ first_name | default('there') }}, ..."
"""


def test_mailbox_add_refuses_a_failing_mailbox_with_the_checks_message(
    db_url: str, tmp_path: Path, mailbox: TestMailbox
) -> None:
    env = cli_env(tmp_path, db_url, CADENCE_PASSWORD="wrong password")
    # From 127.0.0.3: Dovecot slows down logins from an address after a failure.
    out = cadence(
        env, "mailbox", "add", *mailbox_options(mailbox), "--source-address", "127.0.0.3",
        check=False,
    )  # fmt: skip
    assert out.returncode == 1
    assert "Mailbox not added" in out.stderr
    assert "rejected" in out.stderr.lower() or "password" in out.stderr.lower()
    listing = json.loads(cadence(env, "mailbox", "list", "--json").stdout)
    assert listing == []


def test_mailbox_secret_is_encrypted_at_rest(
    db_url: str, tmp_path: Path, mailbox: TestMailbox
) -> None:
    env = cli_env(tmp_path, db_url, CADENCE_PASSWORD=mailbox.password)
    cadence(env, "mailbox", "add", *mailbox_options(mailbox))
    if db_url.startswith("sqlite"):
        raw = Path(db_url.split("///", 1)[1]).read_bytes()
        assert mailbox.password.encode() not in raw
        assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    listing = json.loads(cadence(env, "mailbox", "list", "--json").stdout)
    assert listing[0]["address"] == mailbox.address and listing[0]["status"] == "active"


def test_prospects_import_reports_every_bad_row_and_stores_nothing(
    db_url: str, tmp_path: Path
) -> None:
    env = cli_env(tmp_path, db_url)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "email,first_name,last_name,company,timezone\n"
        "ok@example.test,Ok,One,Acme,Europe/Paris\n"
        "not-an-address,No,Two,Acme,\n"
        "ok@example.test,Dup,Three,Acme,\n"
        "tz@example.test,Tz,Four,Acme,Mars/Olympus\n"
    )
    out = cadence(env, "prospects", "import", str(bad), "--json", check=False)
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["ok"] is False and report["rows"] == 4
    problems = {(e["line"], e["column"]) for e in report["errors"]}
    assert problems == {(3, "email"), (4, "email"), (5, "timezone")}
    # All or nothing: the good row was not stored either.
    good = tmp_path / "good.csv"
    good.write_text("E-mail,Given name\nok@example.test,Ok\n")
    out = cadence(
        env, "prospects", "import", str(good), "--map", "E-mail=email",
        "--map", "Given name=first_name", "--json",
    )  # fmt: skip
    assert json.loads(out.stdout)["created"] == 1  # new, so the first import stored nothing


def test_big_import_with_progress_and_reimport_updates(db_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path, db_url)
    big = tmp_path / "big.csv"
    lines = ["email,first_name,last_name,company,timezone,plan"]
    lines += [f"p{i}@example.test,P{i},L,Co,UTC,gold" for i in range(1500)]
    big.write_text("\n".join(lines) + "\n")
    out = cadence(env, "prospects", "import", str(big))
    assert "Imported 1500 prospect(s): 1500 new, 0 updated." in out.stdout
    out = cadence(env, "prospects", "import", str(big), "--json")
    assert json.loads(out.stdout)["updated"] == 1500


def test_cadence_apply_rejects_bad_files_clearly(db_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path, db_url)
    cases = {
        "name: x\nsteps: []\n": "at least one step",
        "name: x\nsteps:\n  - body: hi\n": "needs a subject",
        "name: x\nsteps:\n  - subject: '{{ oops'\n    body: hi\n": "template error",
        (
            "name: x\nsteps:\n  - subject: s\n    body: b\n"
            "    window: {days: [mon], from: '17:00', to: '09:00'}\n"
        ): "before it starts",
        "name: x\nsteps:\n  - subject: s\n    body: b\n    colour: red\n": "unknown key",
    }
    for i, (text, expected) in enumerate(cases.items()):
        f = tmp_path / f"bad{i}.yaml"
        f.write_text(text)
        out = cadence(env, "cadence", "apply", str(f), check=False)
        assert out.returncode == 2, text
        assert expected in out.stderr, (text, out.stderr)


def test_preview_renders_without_sending(db_url: str, tmp_path: Path, mailbox: TestMailbox) -> None:
    env = cli_env(tmp_path, db_url, CADENCE_PASSWORD=mailbox.password)
    cadence(env, "mailbox", "add", *mailbox_options(mailbox), "--name", "Rita Rep")
    (tmp_path / "c.yaml").write_text(YAML)
    cadence(env, "cadence", "apply", str(tmp_path / "c.yaml"))
    (tmp_path / "p.csv").write_text("email,first_name\npat@example.test,Pät\n")
    cadence(env, "prospects", "import", str(tmp_path / "p.csv"))
    out = cadence(env, "preview", "--cadence", "intro", "--prospect", "pat@example.test")
    assert "Subject: Quick question, Pät" in out.stdout
    assert "Hi Pät, ..." in out.stdout
    assert f"From: Rita Rep <{mailbox.address}>" in out.stdout
    assert mailbox.smtp is not None
    before = len(mailbox.smtp.accepted)
    assert json.loads(cadence(env, "enrollments", "list", "--json").stdout) == []
    assert len(mailbox.smtp.accepted) == before


def test_run_stops_gracefully_on_sigterm(db_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path, db_url)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cadence.cli import main; main()", "-v", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the first pass
            time.sleep(0.5)
            if proc.poll() is not None:
                break
            if (tmp_path / "cadence.db").exists() or not db_url.startswith("sqlite"):
                time.sleep(3)
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "0 sent" in out


def test_enroll_errors_are_clear(db_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path, db_url)
    out = cadence(env, "enroll", "--cadence", "nope", "--mailbox", "x@y.test", "--all", check=False)
    assert out.returncode == 1 and "no cadence named 'nope'" in out.stderr
    out = cadence(env, "enroll", "--cadence", "nope", "--mailbox", "x@y.test", check=False)
    assert out.returncode == 2
