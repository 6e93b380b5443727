"""Helpers for the engine tests: run the CLI in a subprocess, read a test mailbox."""

from __future__ import annotations

import email
import imaplib
import os
import ssl
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from pathlib import Path

from cadence.testing.fixtures import TestMailbox


def cli_env(home: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env.update(CADENCE_HOME=str(home), CADENCE_DATABASE_URL=db_url, **extra)
    return env


def cadence(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from cadence.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"cadence {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def read_folder(box: TestMailbox, folder: str = "INBOX") -> list[EmailMessage]:
    ctx = ssl.create_default_context(cafile=str(box.ca_file))
    imap = imaplib.IMAP4_SSL(box.host, box.imaps_port, ssl_context=ctx)
    try:
        imap.login(box.address, box.password)
        typ, _ = imap.select(f'"{folder}"', readonly=True)
        assert typ == "OK", folder
        typ, data = imap.uid("SEARCH", "ALL")
        out: list[EmailMessage] = []
        for uid in data[0].split():
            typ, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(p[1] for p in parts if isinstance(p, tuple))
            msg = email.message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out
    finally:
        imap.logout()


def mailbox_options(box: TestMailbox) -> list[str]:
    return [
        "--email", box.address,
        "--imap-host", box.host, "--imap-port", str(box.imaps_port), "--imap-security", "tls",
        "--smtp-host", box.host, "--smtp-port", str(box.smtp_starttls_port),
        "--smtp-security", "starttls",
        "--ca-file", str(box.ca_file),
    ]  # fmt: skip


def body_of(msg: EmailMessage, kind: str = "plain") -> str:
    part = msg.get_body((kind,))
    assert part is not None, f"no text/{kind} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content
