"""Exactly once: the worker process is killed after the SMTP server accepted a message and
before Cadence committed it, then restarted.  Exactly one message arrives, whatever the
server does about Sent copies; recovery never re-sends blindly."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cadence.engine.sending import CRASH_ENV
from cadence.testing.fixtures import TestMailbox
from cadence.testing.smtp_server import SMTPTestServer

from .helpers import cadence, cli_env, mailbox_options, read_folder

ONE_STEP = """\
name: one
steps:
  - subject: "Hello {{ first_name }}"
    body: "Hi {{ first_name }}, one message only."
    window: {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
"""
T0 = "2026-11-24T10:00:00+00:00"
T0_PLUS_1MIN = "2026-11-24T10:01:00+00:00"  # the crashed worker's lease still holds
T0_PLUS_10MIN = "2026-11-24T10:10:00+00:00"  # lease expired: recovery runs


@pytest.fixture
def server_files_sent(
    smtp_server: SMTPTestServer, request: pytest.FixtureRequest
) -> Iterator[bool]:
    assert smtp_server.handler is not None
    before = smtp_server.handler.file_sent_copy
    smtp_server.handler.file_sent_copy = bool(request.param)
    yield bool(request.param)
    smtp_server.handler.file_sent_copy = before


@pytest.mark.parametrize(
    "server_files_sent", [True, False], indirect=True, ids=["server-files-sent", "no-filing"]
)
def test_crash_between_acceptance_and_commit_never_sends_twice(
    db_url: str,
    tmp_path: Path,
    new_mailbox: Callable[..., TestMailbox],
    smtp_server: SMTPTestServer,
    server_files_sent: bool,
) -> None:
    rep, pat = new_mailbox("rep"), new_mailbox("pat")
    env = cli_env(tmp_path / "home", db_url, CADENCE_PASSWORD=rep.password)
    cadence(env, "mailbox", "add", *mailbox_options(rep), "--min-gap", "0", "--jitter", "0")
    (tmp_path / "one.yaml").write_text(ONE_STEP)
    cadence(env, "cadence", "apply", str(tmp_path / "one.yaml"))
    (tmp_path / "p.csv").write_text(f"email,first_name\n{pat.address},Pat\n")
    cadence(env, "prospects", "import", str(tmp_path / "p.csv"))
    cadence(env, "enroll", "--cadence", "one", "--mailbox", rep.address, "--all", "--now", T0)

    accepted_before = len(smtp_server.accepted)
    crashed = cadence({**env, CRASH_ENV: "86"}, "run", "--once", "--now", T0, check=False)
    assert crashed.returncode == 86, crashed.stderr
    assert len(smtp_server.accepted) == accepted_before + 1  # the server did accept it
    assert len(read_folder(pat)) == 1
    listing = json.loads(cadence(env, "enrollments", "list", "--json").stdout)
    assert listing[0]["state"] == "active" and listing[0]["step"] == 1  # not recorded

    # Restarted at once: the message is still leased to the dead worker; nothing is sent.
    counts = json.loads(cadence(env, "run", "--once", "--json", "--now", T0_PLUS_1MIN).stdout)
    assert counts["sent"] == 0 and counts["recovered"] == 0
    assert len(read_folder(pat)) == 1

    # After the lease: recovery resolves it from the Sent folder, without sending.
    counts = json.loads(cadence(env, "run", "--once", "--json", "--now", T0_PLUS_10MIN).stdout)
    assert counts["sent"] == 0
    assert len(smtp_server.accepted) == accepted_before + 1
    assert len(read_folder(pat)) == 1
    listing = json.loads(cadence(env, "enrollments", "list", "--json").stdout)
    if server_files_sent:
        assert counts["recovered"] == 1
        assert listing[0]["state"] == "finished"
        assert len(read_folder(rep, "Sent")) == 1  # the server's copy; none appended
    else:
        # Not in Sent on a server that never files copies: proof of nothing.  Held for a
        # person, with the reason; never re-sent.
        assert counts["unknown"] == 1
        assert listing[0]["state"] == "paused"
        assert "will not send it again" in listing[0]["reason"]
        assert read_folder(rep, "Sent") == []
        # A person looks, finds it in Pat's thread, and says so: counted as sent.
        out = cadence(env, "enrollments", "resume", "--cadence", "one", "--prospect",
                      pat.address, check=False)  # fmt: skip
        assert out.returncode == 1 and "--as-sent or --resend" in out.stderr
        cadence(env, "enrollments", "resume", "--cadence", "one", "--prospect", pat.address,
                "--as-sent", "--now", T0_PLUS_10MIN)  # fmt: skip
        listing = json.loads(cadence(env, "enrollments", "list", "--json").stdout)
        assert listing[0]["state"] == "finished"

    # And later passes keep it that way.
    counts = json.loads(
        cadence(env, "run", "--once", "--json", "--now", "2026-11-26T10:00:00+00:00").stdout
    )
    assert counts["sent"] == 0
    assert len(read_folder(pat)) == 1
