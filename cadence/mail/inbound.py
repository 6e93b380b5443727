"""A bounded, defensive read-only view of an inbound message for the classifiers.

Inbound mail is hostile input: broken MIME, unknown charsets, undecodable headers, huge
bodies.  Everything here is parsed once from bytes, every step that the ``email`` package can
raise on is guarded, and every size is bounded so that the regex rules downstream only ever see
a limited amount of text (line length and total length both capped).

Nothing here decides what a message *is*; ``dsn``, ``autoreply`` and ``reply_text`` do that.
"""

from __future__ import annotations

import email
import email.header
import email.parser
import email.utils
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import Message

from cadence.mail.html_text import html_to_text

# Limits.  RFC 5322 §2.1.1 caps a line at 998 characters; real mail breaks that, so we clip
# longer lines rather than refuse.  The totals keep a hostile message from costing more than
# a few milliseconds of regex work.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_PARTS = 256
MAX_DELIMITERS = 200  # "--boundary" lines (RFC 2046 §5.1.1) read before the rest is dropped
MAX_DEPTH = 8
MAX_TEXT_CHARS = 256 * 1024
MAX_LINE_CHARS = 16000
MAX_HEADER_CHARS = 16 * 1024


@dataclass
class TextPart:
    """A decoded text part: where it sits (depth inside attached messages) and its text."""

    content_type: str
    text: str
    depth: int  # 0: the message's own body; 1+: inside an attached message/rfc822


@dataclass
class InboundMessage:
    headers: list[tuple[str, str]]
    content_type: str
    report_type: str
    text_parts: list[TextPart] = field(default_factory=list)
    html_parts: list[TextPart] = field(default_factory=list)
    # message/delivery-status and message/global-delivery-status bodies, as text
    delivery_status: list[str] = field(default_factory=list)
    # message/feedback-report bodies (RFC 5965)
    feedback_reports: list[str] = field(default_factory=list)
    # headers of returned messages (message/rfc822 or text/rfc822-headers parts)
    attached_headers: list[list[tuple[str, str]]] = field(default_factory=list)
    part_types: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key == lname:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key == lname]

    @property
    def subject(self) -> str:
        return self.get("subject") or ""

    @property
    def from_address(self) -> str:
        return first_address(self.get("from") or "")

    @property
    def date(self) -> datetime | None:
        value = self.get("date")
        if not value:
            return None
        try:
            return email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None

    def body_text(self, *, depth: int = 0) -> str:
        """The message's own text (not attached messages), plain parts first, then HTML."""
        texts = [p.text for p in self.text_parts if p.depth <= depth]
        if not texts:
            texts = [html_to_plain(p.text) for p in self.html_parts if p.depth <= depth]
        return clip("\n".join(texts))


class MalformedMessage(ValueError):
    """The bytes are not an email message at all (no header could be read)."""


_WS = re.compile(r"\s+")
_ADDR = re.compile(r"[A-Za-z0-9._%+'=/&^~!#$*{}|?`-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")


def first_address(value: str) -> str:
    """The first addr-spec in a header value, lower-cased ('' if none)."""
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:
        pairs = []
    for _name, addr in pairs:
        if "@" in addr:
            return addr.strip().strip("<>").lower()
    match = _ADDR.search(value)
    return match.group(0).lower() if match else ""


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    if len(text) > limit:
        text = text[:limit]
    if any(len(line) > MAX_LINE_CHARS for line in text.split("\n")):
        text = "\n".join(line[:MAX_LINE_CHARS] for line in text.split("\n"))
    return text


def decode_header_value(raw: str) -> str:
    """Decode RFC 2047 words defensively; unfold; never raise."""
    raw = raw[:MAX_HEADER_CHARS]
    text = raw
    if "=?" in raw:
        try:
            chunks = email.header.decode_header(raw)
            out: list[str] = []
            for chunk, charset in chunks:
                if isinstance(chunk, bytes):
                    out.append(decode_bytes(chunk, charset))
                else:
                    out.append(chunk)
            text = "".join(out)
        except Exception:
            text = raw
    text = text.replace("\r", "").replace("\n", " ")
    return _WS.sub(" ", text).strip()


def decode_bytes(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate.strip().strip('"'), errors="strict")
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    if charset:
        try:
            return data.decode(charset.strip().strip('"'), errors="replace")
        except (LookupError, ValueError):
            pass
    return data.decode("latin-1", errors="replace")


def _raw_headers(msg: Message) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    try:
        items = list(msg.raw_items()) if hasattr(msg, "raw_items") else list(msg.items())
    except Exception:
        return out
    for name, value in items[:500]:
        out.append((str(name).strip().lower(), decode_header_value(str(value))))
    return out


def _param(msg: Message, name: str) -> str:
    try:
        value = msg.get_param(name, header="content-type")
    except Exception:
        return ""
    if isinstance(value, tuple):
        value = email.utils.collapse_rfc2231_value(value)
    return str(value or "").strip().lower()


def _content_type(msg: Message) -> str:
    try:
        return str(msg.get_content_type()).lower()
    except Exception:
        return "text/plain"


def _payload_bytes(msg: Message) -> bytes:
    try:
        payload = msg.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload[: MAX_TEXT_CHARS * 4]
    try:
        raw = msg.get_payload()
    except Exception:
        return b""
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="replace")[: MAX_TEXT_CHARS * 4]
    return b""


def _part_text(msg: Message) -> str:
    charset = None
    try:
        charset = msg.get_content_charset()
    except Exception:
        charset = None
    text = decode_bytes(_payload_bytes(msg), charset)
    return clip(text.replace("\r\n", "\n").replace("\r", "\n"))


def _subpart_source(msg: Message) -> str:
    """Re-serialise a parsed sub-structure (delivery-status blocks) as header text."""
    payload: object
    try:
        payload = msg.get_payload()
    except Exception:
        return ""
    if isinstance(payload, str):
        cte = str(msg.get("content-transfer-encoding", "")).lower()
        if cte in ("base64", "quoted-printable"):
            return _part_text(msg)
        return clip(payload.replace("\r\n", "\n"))
    blocks: list[str] = []
    if isinstance(payload, list):
        for block in payload[:MAX_PARTS]:
            if isinstance(block, Message):
                lines = [f"{k}: {v}" for k, v in _raw_headers(block)]
                body = block.get_payload()
                if isinstance(body, str) and body.strip():
                    lines.append(body)
                blocks.append("\n".join(lines))
    return clip("\n\n".join(blocks))


_DELIMITER_LINE = re.compile(rb"^--", re.M)


def _bound_mime_parts(raw: bytes) -> bytes:
    """Cut the message after MAX_DELIMITERS MIME delimiter lines: the standard parser's cost
    grows with the number of parts, and no real reply or report needs hundreds of them."""
    for count, match in enumerate(_DELIMITER_LINE.finditer(raw), start=1):
        if count > MAX_DELIMITERS:
            return raw[: match.start()]
    return raw


def parse_inbound(raw: bytes) -> InboundMessage:
    """Parse bytes into an :class:`InboundMessage`; raise :class:`MalformedMessage` only when
    no header at all can be read."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raw = raw[:MAX_MESSAGE_BYTES]
    raw = _bound_mime_parts(raw)
    stripped = raw.lstrip()
    # An mbox "From " envelope line is not a header; drop it.
    if stripped.startswith(b"From ") and b"\n" in stripped:
        stripped = stripped.split(b"\n", 1)[1]
    try:
        msg = email.message_from_bytes(stripped, policy=policy.default)
    except Exception as exc:  # the parser is lenient; this is belt and braces
        raise MalformedMessage(f"cannot parse message: {exc}") from exc
    if msg.get("content-type") is None:
        msg = _recover_multipart(stripped, msg)  # type: ignore[assignment]
    headers = _raw_headers(msg)
    if not headers or not any(
        k in ("from", "to", "subject", "date", "message-id", "received", "return-path")
        for k, _ in headers
    ):
        raise MalformedMessage("no message header found")
    view = InboundMessage(
        headers=headers,
        content_type=_content_type(msg),
        report_type=_param(msg, "report-type"),
    )
    _walk(msg, view, depth=0, budget=[MAX_PARTS])
    if not view.text_parts and not view.html_parts and not view.delivery_status:
        # Broken MIME (an unindented boundary parameter, a missing closing delimiter) can leave
        # no readable part: fall back to the raw body so the rules still see the words.
        _, sep, body = stripped.replace(b"\r\n", b"\n").partition(b"\n\n")
        if sep and body.strip():
            view.text_parts.append(TextPart("text/plain", clip(decode_bytes(body, None)), 0))
    return view


_BOUNDARY_LINE = re.compile(rb"^--([0-9A-Za-z'()+_,./:=?-]{1,70})[ \t]*\r?$", re.M)


def _recover_multipart(raw: bytes, msg: Message) -> Message:
    """A report whose top-level Content-Type header was lost (some Sendmail versions) still
    has its MIME delimiters in the body: give it back a multipart/report type if so."""
    head, sep, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    if not sep:
        return msg
    match = _BOUNDARY_LINE.search(body[:20000])
    if not match or body.count(b"--" + match.group(1)) < 2:
        return msg
    # only when a delimiter of that boundary opens a delivery-status part
    if not re.search(
        rb"(?i)--" + re.escape(match.group(1)) + rb"[ \t]*\n(?:[^\n]{1,200}\n){0,5}?"
        rb"content-type:\s*message/(?:global-)?delivery-status",
        body[:200000],
    ):
        return msg
    boundary = match.group(1).decode("ascii")
    patched = (head + b'\nMIME-Version: 1.0\nContent-Type: multipart/report; '
               b'report-type=delivery-status; boundary="' + boundary.encode("ascii") + b'"\n\n'
               + body)
    try:
        return email.message_from_bytes(patched, policy=policy.default)
    except Exception:
        return msg


def _walk(msg: Message, view: InboundMessage, depth: int, budget: list[int]) -> None:
    if budget[0] <= 0 or depth > MAX_DEPTH:
        return
    budget[0] -= 1
    ctype = _content_type(msg)
    view.part_types.append(ctype)
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        view.delivery_status.append(_subpart_source(msg))
        return
    if ctype == "message/feedback-report":
        view.feedback_reports.append(_subpart_source(msg))
        return
    if ctype in ("text/rfc822-headers", "text/global-headers", "message/rfc822-headers"):
        text = _part_text(msg)
        try:
            hmsg = email.parser.Parser(policy=policy.default).parsestr(text, headersonly=True)
            view.attached_headers.append(_raw_headers(hmsg))
        except Exception:
            pass
        return
    if ctype in ("message/rfc822", "message/global"):
        payload: object
        try:
            payload = msg.get_payload()
        except Exception:
            return
        inner: Message | None = None
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            inner = payload[0]
        elif isinstance(payload, str):
            try:
                inner = email.message_from_string(payload, policy=policy.default)
            except Exception:
                inner = None
        if inner is not None:
            view.attached_headers.append(_raw_headers(inner))
            _walk(inner, view, depth + 1, budget)
        return
    if msg.is_multipart():
        try:
            parts = msg.get_payload()
        except Exception:
            return
        if isinstance(parts, list):
            for part in parts:
                if isinstance(part, Message):
                    _walk(part, view, depth, budget)
        return
    if ctype == "text/html":
        view.html_parts.append(TextPart(ctype, _part_text(msg), depth))
    elif ctype.startswith("text/") or ctype in ("", "message/partial"):
        view.text_parts.append(TextPart(ctype, _part_text(msg), depth))


def html_to_plain(html: str) -> str:
    """Plain text of an HTML body (block elements become line breaks)."""
    return html_to_text(html)
