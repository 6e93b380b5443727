"""Outbound MIME: structure, encoding of non-ASCII, threading, and no header injection."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from cadence.mail.mime import (
    Party,
    Thread,
    build_message,
    clean_header_value,
    make_message_id,
    reply_subject,
    to_bytes,
)


def _parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _build(**kw: object) -> bytes:
    args: dict[str, object] = {
        "sender": Party("rep@cadence.test", "Rita Rep"),
        "recipient": Party("pat@example.test", "Pat Jones"),
        "subject": "Quick question",
        "text": "Hi Pat,\n\nA question.",
        "message_id": make_message_id("cadence.test"),
    }
    args.update(kw)
    return to_bytes(build_message(**args))  # type: ignore[arg-type]


def test_multipart_alternative_with_text_and_html() -> None:
    data = _build()
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    msg = _parse(data)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "<p>Hi Pat,</p>" in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert msg["Message-ID"].endswith(".cadence@cadence.test>")
    assert msg["Date"]


def test_non_ascii_names_and_subject_are_encoded() -> None:
    data = _build(
        sender=Party("rep@cadence.test", "Zoë Ågren"),
        recipient=Party("jorg@example.test", "Jörg Müller"),
        subject="Frage zu Ihrem Büro — 東京",
        text="Grüße aus Köln",
    )
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # RFC 2047 encoded words, no raw 8-bit in headers
    for line in head.split(b"\r\n"):
        assert len(line) <= 998
    msg = _parse(data)
    assert msg["Subject"] == "Frage zu Ihrem Büro — 東京"
    assert msg["From"].addresses[0].display_name == "Zoë Ågren"
    assert msg["To"].addresses[0].display_name == "Jörg Müller"
    assert msg.get_body(("plain",)).get_content().strip() == "Grüße aus Köln"  # type: ignore[union-attr]
    assert data.isascii()  # quoted-printable bodies: no 8BITMIME needed


@pytest.mark.parametrize(
    "evil", ["\r\nBcc: victim@evil.test", "\nBcc: victim@evil.test", "\rX-Evil: 1"]
)
def test_crlf_in_any_field_cannot_inject_a_header(evil: str) -> None:
    data = _build(
        sender=Party("rep@cadence.test", "Rita" + evil),
        recipient=Party("pat@example.test", "Pat" + evil),
        subject="Hello" + evil,
        extra_headers={"X-Campaign": "intro" + evil},
    )
    msg = _parse(data)
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert [k for k in msg if k.lower() in ("bcc", "x-evil")] == []
    assert "Bcc" in msg["Subject"] or "X-Evil" in msg["Subject"]  # kept as text, on one line
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert len(msg["To"].addresses) == 1 and msg["To"].addresses[0].addr_spec == "pat@example.test"
    assert msg["X-Campaign"].startswith("intro ")


def test_bad_addresses_and_ids_are_refused() -> None:
    with pytest.raises(ValueError):
        _build(recipient=Party("pat@example.test\r\nBcc: x@evil.test"))
    with pytest.raises(ValueError):
        _build(message_id="<no-at-sign>")
    with pytest.raises(ValueError):
        _build(extra_headers={"X-Bad\r\nBcc": "x"})


def test_threading_headers() -> None:
    first, second = "<a1@cadence.test>", "<b2@cadence.test>"
    data = _build(subject=reply_subject("Quick question"), thread=Thread(second, (first,)))
    msg = _parse(data)
    assert msg["In-Reply-To"] == second
    assert msg["References"] == f"{first} {second}"
    assert msg["Subject"] == "Re: Quick question"
    assert reply_subject("Re: Quick question") == "Re: Quick question"


def test_references_stay_bounded() -> None:
    refs = tuple(f"<r{i}@cadence.test>" for i in range(50))
    header = Thread("<last@cadence.test>", refs).references_header()
    ids = header.split()
    assert len(ids) == 20 and ids[0] == "<r0@cadence.test>" and ids[-1] == "<last@cadence.test>"


def test_clean_header_value() -> None:
    assert clean_header_value("a\r\n b\tc\x00d\u2028e") == "a b c d e"
