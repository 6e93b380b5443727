"""The test bed itself: Dovecot variants start, mail delivered over SMTP lands in IMAP."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
from collections.abc import Callable

from cadence.testing.dovecot import DovecotServer
from cadence.testing.fixtures import TestMailbox


def test_smtp_submission_delivers_into_dovecot(mailbox: TestMailbox) -> None:
    ctx = ssl.create_default_context(cafile=str(mailbox.ca_file))
    with smtplib.SMTP(mailbox.host, mailbox.smtp_starttls_port, timeout=10) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(mailbox.address, mailbox.password)
        smtp.sendmail(
            mailbox.address,
            [mailbox.address],
            b"Subject: testbed\r\nMessage-ID: <tb1@cadence.test>\r\n\r\nhello\r\n",
        )
    imap = imaplib.IMAP4_SSL(mailbox.host, mailbox.imaps_port, ssl_context=ctx)
    imap.login(mailbox.address, mailbox.password)
    typ, data = imap.select("INBOX")
    assert typ == "OK" and data[0] == b"1"
    typ, data = imap.list()
    assert any(b"\\Sent" in line for line in data)
    imap.logout()


def test_variants_advertise_what_they_imitate(
    dovecot_variant: Callable[[str], DovecotServer],
) -> None:
    exchange = dovecot_variant("exchange")
    with imaplib.IMAP4(exchange.host, exchange.imap_port, timeout=5) as imap:
        assert b"Microsoft Exchange" in imap.welcome
        assert "UIDPLUS" in imap.capabilities
    no_uidplus = dovecot_variant("no_uidplus")
    with imaplib.IMAP4(no_uidplus.host, no_uidplus.imap_port, timeout=5) as imap:
        assert "UIDPLUS" not in imap.capabilities

