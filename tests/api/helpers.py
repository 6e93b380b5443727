"""Helpers for the API tests: test-bed mailbox bodies, a mailbox stored for a given user."""

from __future__ import annotations

import imaplib
import ssl
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from cadence.engine.mailboxes import MailboxSpec, save_mailbox
from cadence.engine.runtime import Runtime
from cadence.mail.endpoints import Endpoint, Security
from cadence.testing.fixtures import TestMailbox


def connection_body(box: TestMailbox, **extra: Any) -> dict[str, Any]:
    return {
        "email": box.address,
        "password": box.password,
        "imap_host": box.host,
        "imap_port": box.imaps_port,
        "imap_security": "tls",
        "smtp_host": box.host,
        "smtp_port": box.smtp_starttls_port,
        "smtp_security": "starttls",
        "ca_file": str(box.ca_file),
        "timeout": 10,
        **extra,
    }


async def store_mailbox(runtime: Runtime, owner_id: int | None, address: str) -> int:
    """A mailbox row for ``owner_id`` without a network check (authorisation tests)."""
    spec = MailboxSpec(
        address=address,
        username=address,
        password="not-used-here",
        imap=Endpoint("imap.invalid", 993, Security.TLS),
        smtp=Endpoint("smtp.invalid", 587, Security.STARTTLS),
    )
    async with runtime.db.transaction() as s:
        mailbox, _ = await save_mailbox(s, spec, runtime.secrets)
        mailbox.owner_id = owner_id
        await s.flush()
        return mailbox.id


def append_reply(
    to_box: TestMailbox, from_address: str, in_reply_to: str, subject: str, text: str
) -> None:
    """Put a prospect's reply into the rep's INBOX (IMAP APPEND, as delivery would)."""
    msg = EmailMessage()
    msg["From"] = from_address
    msg["To"] = to_box.address
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="prospect.test")
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = in_reply_to
    msg.set_content(text)
    ctx = ssl.create_default_context(cafile=str(to_box.ca_file))
    imap = imaplib.IMAP4_SSL(to_box.host, to_box.imaps_port, ssl_context=ctx)
    try:
        imap.login(to_box.address, to_box.password)
        typ, _ = imap.append("INBOX", "", imaplib.Time2Internaldate(time.time()), msg.as_bytes())
        assert typ == "OK"
    finally:
        imap.logout()
