"""The IMAP boundary: server bytes become typed values, and server names become products."""

from __future__ import annotations

import base64

import pytest

from cadence.mail.imap import _parse_fetch, _parse_list_line, _uid_set, decode_mutf7, encode_mutf7
from cadence.mail.server_identity import identify


@pytest.mark.parametrize(
    ("greeting", "version", "too_old_without_uidplus", "too_old_with_uidplus"),
    [
        ("OK Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1 (EX1) ready.",
         "Exchange 2003", True, True),
        ("OK Microsoft Exchange Server 2007 IMAP4 service ready", "Exchange 2007", True, True),
        ("OK The Microsoft Exchange IMAP4 service is ready.", None, True, False),
        ("OK Microsoft Exchange Server 2010 IMAP4 service ready version 14.1.218.15",
         "Exchange 2010 SP1", False, False),
        ("OK Microsoft Exchange Server 2010 IMAP4 service ready version 14.0.639.21",
         "Exchange 2010", True, True),
    ],
)
def test_exchange_versions(
    greeting: str, version: str | None, too_old_without_uidplus: bool, too_old_with_uidplus: bool
) -> None:
    ident = identify(greeting)
    assert ident.is_exchange
    assert ident.version_name == version
    assert ident.exchange_too_old(has_uidplus=False) is too_old_without_uidplus
    assert bool(ident.exchange_too_old(has_uidplus=True)) is too_old_with_uidplus


def test_microsoft_365_greeting_names_its_host() -> None:
    host = "MN2PR01CA0017.namprd01.prod.outlook.com"
    tag = base64.b64encode(host.encode("utf-16-le")).decode()
    ident = identify(f"OK The Microsoft Exchange IMAP4 service is ready. [{tag}]")
    assert ident.hostname == host
    assert "Microsoft 365" in (ident.product or "")


def test_other_servers() -> None:
    assert identify("OK Gimap ready for requests from 192.0.2.1").product == "Gmail"
    assert identify("OK [CAPABILITY IMAP4rev1] Dovecot (Debian) ready.").product == "Dovecot"
    assert not identify("OK Dovecot ready.").is_exchange
    assert identify("OK hello", {"name": "Exchange", "version": "15.1.2507.6"}).version_name == (
        "Exchange 2016"
    )


def test_modified_utf7_round_trip() -> None:
    assert decode_mutf7("&AMk-l&AOk-ments envoy&AOk-s") == "Éléments envoyés"
    assert encode_mutf7("Éléments envoyés") == "&AMk-l&AOk-ments envoy&AOk-s"
    assert decode_mutf7("Tom &- Jerry") == "Tom & Jerry"
    assert encode_mutf7("Tom & Jerry") == "Tom &- Jerry"
    assert decode_mutf7(encode_mutf7("日本語 Gesendet")) == "日本語 Gesendet"


def test_uid_set_compression() -> None:
    assert _uid_set([5, 1, 2, 3, 9, 10, 7]) == "1:3,5,7,9:10"
    assert _uid_set([42]) == "42"
    with pytest.raises(ValueError):
        _uid_set([])


def test_list_lines() -> None:
    folder = _parse_list_line(rb'(\HasNoChildren \Sent) "/" "Sent Items"', None)
    assert folder is not None and folder.name == "Sent Items" and folder.has_flag("\\sent")
    folder = _parse_list_line(rb'(\HasNoChildren) "." "INBOX.&AMk-l&AOk-ments envoy&AOk-s"', None)
    assert folder is not None and folder.display_name == "INBOX.Éléments envoyés"
    folder = _parse_list_line(rb"(\Noselect) NIL {4}", b"Junk")
    assert folder is not None and folder.name == "Junk" and folder.delimiter is None
    assert _parse_list_line(b"garbage", None) is None


def test_fetch_with_literals() -> None:
    lines = [
        b"1 FETCH (UID 7 FLAGS (\\Seen) RFC822.SIZE 120 BODY[HEADER.FIELDS (MESSAGE-ID)] {24}",
        bytearray(b"Message-ID: <a@b>\r\n\r\n\r\n"[:24]),
        b")",
        b'2 FETCH (UID 9 FLAGS () INTERNALDATE "26-Nov-2026 03:00:00 +0000")',
        b"Fetch completed.",
    ]
    messages = _parse_fetch(lines)
    assert [m.uid for m in messages] == [7, 9]
    assert messages[0].flags == ("\\Seen",)
    assert messages[0].size == 120
    assert messages[0].sections["BODY[HEADER.FIELDS (MESSAGE-ID)]"].startswith(b"Message-ID: <a@b>")
    assert messages[1].internaldate == "26-Nov-2026 03:00:00 +0000"
