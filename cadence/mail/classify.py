"""Inbound-mail classification: what a message that arrived in a watched mailbox is.

``classify_message(raw)`` is a pure function of the bytes (plus, for relative return dates,
the message's own Date header).  The order of the checks is deliberate:

1. ``feedback`` - an ARF report (RFC 5965: multipart/report; report-type=feedback-report);
2. ``bounce`` / ``delivery_report`` - a delivery status notification (``dsn``): checked before
   auto-replies because many bounces carry ``Auto-Submitted`` (RFC 3464 §2 / RFC 3834 §5)
   and Exchange NDRs even say ``auto-replied``;
3. ``auto_reply`` - out-of-office and other responders (``autoreply``);
4. ``reply`` - a person's message; ``other`` - machine mail that is none of the above (lists,
   notifications, challenge-response).

A person's reply must never become an auto-reply or a bounce (the cadence would stop or pause
for the wrong reason), so the bounce and auto-reply rules need machine evidence, not wording.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from cadence.errors import CadenceError
from cadence.mail.autoreply import detect_auto_reply, return_date
from cadence.mail.dsn import parse_delivery_report, sns_notification
from cadence.mail.inbound import InboundMessage, MalformedMessage, html_to_plain, parse_inbound
from cadence.mail.reply_text import extract_reply_from_html, extract_reply_text

Kind = Literal["reply", "auto_reply", "bounce", "feedback", "delivery_report", "other"]


class MalformedMessageError(CadenceError):
    code = "malformed_message"
    hint = "The file is not an email message (RFC 5322): check it is a raw .eml file."


@dataclass(frozen=True)
class Bounce:
    recipient: str
    status: str | None
    reply_code: str | None
    reason: str
    hard: bool
    action: str

    def to_dict(self) -> dict[str, Any]:
        return {"recipient": self.recipient, "status": self.status,
                "reply_code": self.reply_code, "reason": self.reason, "hard": self.hard,
                "action": self.action}


@dataclass(frozen=True)
class AutoReply:
    return_date: date | None

    def to_dict(self) -> dict[str, Any]:
        return {"return_date": self.return_date.isoformat() if self.return_date else None}


@dataclass(frozen=True)
class Classification:
    kind: Kind
    bounces: list[Bounce] = field(default_factory=list)
    auto_reply: AutoReply | None = None
    reply_text: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    feedback_type: str | None = None

    def to_dict(self, file: str | None = None) -> dict[str, Any]:
        return {
            "file": file,
            "kind": self.kind,
            "bounces": [b.to_dict() for b in self.bounces],
            "auto_reply": self.auto_reply.to_dict() if self.auto_reply else None,
            "reply_text": self.reply_text,
            "in_reply_to": list(self.in_reply_to),
        }

    def to_json(self, file: str | None = None) -> str:
        return json.dumps(self.to_dict(file), ensure_ascii=False)


_MSGID = re.compile(r"<[^<>\s]{1,250}>")
# Challenge-response systems (Bluebottle, Boxbe, SpamArrest ...) answer in the recipient's name
# and ask the sender to prove they are human: machine mail, not the person's reply.
_CHALLENGE = re.compile(
    r"added to (?:the recipient's|my|the) (?:allowed|approved|safe|white) ?(?:senders? )?list|"
    r"(?:account|mailbox|inbox|address) is protected by|"
    r"(?:held|pending|quarantined) (?:until|for) (?:you )?(?:verify|verification|approval)|"
    r"(?:verify|confirm) that you are (?:a )?(?:human|real person)|"
    r"challenge[- ]response",
    re.I,
)
_LIST_PRECEDENCE = ("bulk", "list", "junk")


def _referenced_ids(view: InboundMessage) -> list[str]:
    ids: list[str] = []
    for name in ("in-reply-to", "references"):
        for value in view.get_all(name):
            for mid in _MSGID.findall(value)[:100]:
                if mid not in ids:
                    ids.append(mid)
    return ids


def _is_feedback(view: InboundMessage) -> bool:
    if view.feedback_reports:
        return True
    if view.content_type == "multipart/report" and view.report_type == "feedback-report":
        return True
    sns = sns_notification(view)
    if sns is not None and str(sns.get("notificationType", "")).lower() == "complaint":
        return True
    # Hotmail/Outlook.com JMRP-style complaints: the original attached, no ARF part
    if view.attached_headers and re.match(
        r"\s*(?:complaint about message from|abuse report|spam report|fbl report)",
        view.subject, re.I,
    ):
        return True
    # Some providers send ARF-like reports as text with the RFC 5965 fields inline.
    text = "\n".join(p.text for p in view.text_parts if p.depth == 0)[:20000]
    return bool(re.search(r"^Feedback-Type:\s*\w+", text, re.M)) and bool(
        re.search(r"^(?:User-Agent|Version):", text, re.M)
    )


def _feedback_type(view: InboundMessage) -> str | None:
    for source in view.feedback_reports:
        match = re.search(r"^feedback-type:\s*([\w-]+)", source, re.I | re.M)
        if match:
            return match.group(1).lower()
    return None


def _reply_text(view: InboundMessage) -> str:
    plain = [p.text for p in view.text_parts if p.depth == 0 and p.content_type == "text/plain"]
    if plain and any(t.strip() for t in plain):
        return extract_reply_text(next(t for t in plain if t.strip()))
    html = [p.text for p in view.html_parts if p.depth == 0]
    if html:
        return extract_reply_from_html(html[0])
    return ""


def classify_view(view: InboundMessage, *, today: date | None = None) -> Classification:
    refs = _referenced_ids(view)
    if _is_feedback(view):
        return Classification(kind="feedback", in_reply_to=refs, feedback_type=_feedback_type(view))

    report = parse_delivery_report(view)
    if report is not None:
        ids = list(refs)
        for mid in report.original_message_ids:
            if mid not in ids:
                ids.append(mid)
        failed = report.failed
        # every row, in the report's order: a failure report may also list recipients that
        # are only delayed (their "action" says so, and they are never hard)
        bounces = [Bounce(r.recipient, r.status, r.reply_code, r.reason, r.hard, r.action)
                   for r in report.recipients]
        return Classification(kind="bounce" if failed else "delivery_report", bounces=bounces,
                              in_reply_to=ids)

    body = _reply_text(view)
    full_body = view.body_text()
    verdict = detect_auto_reply(view, full_body)
    if verdict.is_auto_reply:
        sent = view.date
        ref = sent.date() if sent else (today or date.today())
        us_order = not bool(re.search(r"\.(?:de|fr|es|it|nl|pt|at|ch|be|br)\b", view.from_address))
        returned = return_date(f"{view.subject}\n{full_body}", ref, us_order=us_order)
        return Classification(kind="auto_reply", auto_reply=AutoReply(returned), in_reply_to=refs,
                              reply_text=body or None)

    precedence = (view.get("precedence") or "").strip().lower()
    # List headers alone do not make mail impersonal: a person answering from a shared
    # address that is a mailing list (a Google Group "sales@") still answered us.
    listed = precedence in _LIST_PRECEDENCE or view.get("list-id") is not None
    machine = verdict.machine_made or (listed and not refs)
    if machine or _CHALLENGE.search(body[:3000]):
        return Classification(kind="other", in_reply_to=refs, reply_text=body or None)
    if not body and not full_body.strip() and view.html_parts:
        body = extract_reply_text(html_to_plain(view.html_parts[0].text))
    return Classification(kind="reply", reply_text=body, in_reply_to=refs)


def classify_message(raw: bytes, *, today: date | None = None) -> Classification:
    """Classify one raw RFC 5322 message.

    Raises :class:`MalformedMessageError` when the bytes are not a message at all; any other
    oddity (broken MIME, unknown charsets, truncated parts) still yields a result.
    """
    try:
        view = parse_inbound(raw)
    except MalformedMessage as exc:
        raise MalformedMessageError(str(exc)) from exc
    try:
        return classify_view(view, today=today)
    except RecursionError as exc:  # pathological nesting the limits did not catch
        raise MalformedMessageError("message structure too deeply nested") from exc
