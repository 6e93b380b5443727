"""Outbound messages: multipart/alternative (text + HTML) built with ``policy.default``.

Every header is set from data through ``email.headerregistry`` (addresses as ``Address``
values, never formatted strings), so the library encodes non-ASCII names and subjects
(RFC 2047) and folds long lines.  Control characters, CR and LF in any value are collapsed to
one space first: a prospect's name, a subject or a custom field can never start a new header
(the library refuses CR/LF anyway; we clean instead of failing a send over a stray newline).

Threading (RFC 5322 section 3.6.4): a follow-up carries ``In-Reply-To`` (the previous
message) and ``References`` (the thread so far, plus the previous message).  Every message also
carries Outlook's ``Thread-Index`` ([MS-OXOMSG] 2.2.1.3, PidTagConversationIndex): 6 bytes of
time, a 16-byte conversation GUID, then one 5-byte block per reply.  The GUID is derived from
the thread's first Message-ID, so a reply from Outlook that drops In-Reply-To and References
still names the conversation (``thread_guid``) and the reply tracker can match it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_MSGID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
# RFC 5322 section 2.1.1: lines of at most 998 characters; References can grow long, so we
# keep the first message and the most recent ones (as RFC 5322 section 3.6.4 suggests).
_MAX_REFERENCES = 20


def clean_header_value(value: str) -> str:
    """One line, no control characters: what may safely go into a header."""
    return " ".join(_CONTROL.sub(" ", value).split())


def make_message_id(domain: str) -> str:
    domain = clean_header_value(domain).strip("<>[] ").lower() or "localhost"
    if not re.fullmatch(r"[a-z0-9.-]+", domain):
        domain = domain.encode("idna").decode("ascii")
    return f"<{uuid.uuid4().hex}.cadence@{domain}>"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def reply_subject(first_subject: str) -> str:
    subject = clean_header_value(first_subject)
    return subject if re.match(r"(?i)^re\s*:", subject) else f"Re: {subject}"


def text_to_html(text: str) -> str:
    """A plain body as simple HTML: paragraphs on blank lines, line breaks kept."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    parts = [
        "<p>" + "<br>\n".join(html.escape(line) for line in p.splitlines()) + "</p>"
        for p in paragraphs
        if p.strip()
    ]
    return "<!DOCTYPE html>\n<html><body>\n" + "\n".join(parts) + "\n</body></html>\n"


def quote_text(text: str, attribution: str) -> str:
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.rstrip().splitlines())
    return f"{attribution}\n{quoted}\n"


@dataclass(frozen=True)
class Party:
    address: str
    name: str | None = None

    def header(self) -> Address:
        local, _, domain = self.address.strip().rpartition("@")
        if not local or not domain or _CONTROL.search(self.address):
            raise ValueError(f"not an email address: {self.address!r}")
        return Address(
            display_name=clean_header_value(self.name or ""), username=local, domain=domain
        )


@dataclass(frozen=True)
class Thread:
    """What a follow-up answers: the previous message's Message-ID and its References."""

    in_reply_to: str
    references: tuple[str, ...] = ()

    def references_header(self) -> str:
        chain = [r for r in self.references if _MSGID.fullmatch(r)]
        if _MSGID.fullmatch(self.in_reply_to) and self.in_reply_to not in chain:
            chain.append(self.in_reply_to)
        if len(chain) > _MAX_REFERENCES:
            chain = [chain[0], *chain[-(_MAX_REFERENCES - 1) :]]
        return " ".join(chain)


# FILETIME: 100 ns ticks since 1601-01-01 UTC.
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def _filetime(when: datetime) -> int:
    return int((when.astimezone(UTC) - _FILETIME_EPOCH).total_seconds() * 10_000_000)


def conversation_root(message_id: str, references: str | None = None) -> str:
    """The Message-ID a thread started with: the first of References, else the message's own."""
    chain = _MSGID.findall(references or "")
    return chain[0] if chain else message_id


def thread_guid(root_message_id: str) -> str:
    """The 16-byte conversation GUID (hex) for a thread that started with this Message-ID."""
    return hashlib.md5(root_message_id.strip().lower().encode(), usedforsecurity=False).hexdigest()


def thread_index(root_message_id: str, date: datetime, replies: int = 0) -> str:
    """A Thread-Index value: the header block (time + GUID) and ``replies`` child blocks."""
    ticks = _filetime(date)
    value = ticks.to_bytes(8, "big")[:6] + bytes.fromhex(thread_guid(root_message_id))
    for n in range(1, replies + 1):
        # Child block (MS-OXOMSG): 1 + 31 bits of time, 4 random bits, 4 sequence bits.  Outlook
        # puts the time since the header block there; only the GUID is ever read back.
        delta = (ticks >> 18) & 0x7FFFFFFF
        seed = hashlib.sha256(f"{root_message_id}|{n}".encode()).digest()[0] & 0x0F
        value += ((delta << 8) | (seed << 4) | (n & 0x0F)).to_bytes(5, "big")
    return base64.b64encode(value).decode("ascii")


def parse_thread_index(value: str | None) -> str | None:
    """The conversation GUID (hex) of a Thread-Index header, or None if it is not one."""
    if not value:
        return None
    text = "".join(value.split())
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        return None
    if len(raw) < 22 or (len(raw) - 22) % 5:
        return None
    return raw[6:22].hex()


def build_message(
    *,
    sender: Party,
    recipient: Party,
    subject: str,
    text: str,
    html_body: str | None = None,
    message_id: str,
    date: datetime | None = None,
    thread: Thread | None = None,
    extra_headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message ready for ``bytes(message)`` (CRLF line ends)."""
    if not _MSGID.fullmatch(message_id):
        raise ValueError(f"not a Message-ID: {message_id!r}")
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender.header()
    msg["To"] = recipient.header()
    msg["Subject"] = clean_header_value(subject)
    msg["Date"] = format_datetime((date or datetime.now(UTC)).astimezone(UTC))
    msg["Message-ID"] = message_id
    references: str | None = None
    if thread is not None and _MSGID.fullmatch(thread.in_reply_to):
        references = thread.references_header()
        msg["In-Reply-To"] = thread.in_reply_to
        msg["References"] = references
    depth = len(_MSGID.findall(references or ""))
    msg["Thread-Index"] = thread_index(
        conversation_root(message_id, references), date or datetime.now(UTC), depth
    )
    for name, value in (extra_headers or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9-]+", name):
            raise ValueError(f"not a header name: {name!r}")
        msg[name] = clean_header_value(value)
    # Quoted-printable for non-ASCII text: 8BITMIME (RFC 6152) is not everywhere.
    plain = text if text.endswith("\n") else text + "\n"
    rich = html_body if html_body is not None else text_to_html(text)
    msg.set_content(plain, cte=_cte(plain))
    msg.add_alternative(rich, subtype="html", cte=_cte(rich))
    for part in msg.iter_parts():
        del part["MIME-Version"]  # only the top level carries it (RFC 2045 section 4)
    return msg


def _cte(text: str) -> str:
    return (
        "7bit"
        if text.isascii() and all(len(x) <= 998 for x in text.splitlines())
        else ("quoted-printable")
    )


def to_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=policy.SMTP)
