"""Delivery reports: RFC 3464 DSNs and the non-standard bounces real servers write.

Two readers share one result type:

* **Structured** - a ``message/delivery-status`` part (RFC 3464 §2): per-recipient blocks with
  ``Final-Recipient``, ``Action``, ``Status`` and ``Diagnostic-Code``.  When the server's
  human-readable part names a more specific cause, that text refines the reason.
* **Free text** - qmail, Exim, old Sendmail, Exchange, Gmail, Yahoo and most appliances write a
  human-readable report only.  A message is treated as one only when it *looks* machine-made
  (a mailer-daemon/postmaster sender, a null return path, ``Auto-Submitted`` or
  ``X-Failed-Recipients``) *and* reads like a failure report; a person's reply that merely
  talks about bounces never qualifies.  Recipients are the addresses that the report names
  outside the returned original, minus the addresses of the mail's own parties.

A report whose recipients were all ``delayed`` (or ``delivered``/``relayed``/``expanded``) is a
delivery report, not a failure (RFC 3464 §2.3.3).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from cadence.mail.bounce_context import provider_reason
from cadence.mail.bounce_reasons import (
    is_hard,
    reason_for,
    refine_by_permanence,
    refine_by_phase,
)
from cadence.mail.inbound import InboundMessage, first_address, html_to_plain

FAILED_ACTIONS = frozenset({"failed"})
_VAGUE_REASONS = frozenset({"undefined", "networkerror", "systemerror", "syntaxerror"})
MAX_RECIPIENTS = 100  # rows read from one report; a real DSN names a handful


@dataclass(frozen=True)
class RecipientStatus:
    recipient: str
    status: str | None
    reply_code: str | None
    reason: str
    hard: bool
    action: str


@dataclass
class DeliveryReport:
    recipients: list[RecipientStatus] = field(default_factory=list)
    original_message_ids: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[RecipientStatus]:
        return [r for r in self.recipients if r.action in FAILED_ACTIONS]

    @property
    def is_failure(self) -> bool:
        return bool(self.failed)


# --- patterns --------------------------------------------------------------------------------

_ADDR_RE = re.compile(
    r"(?<![A-Za-z0-9._%+=-])([A-Za-z0-9._%+'=/&^~!#$*{}|?`-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24})(?![A-Za-z0-9-])"
)
_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_CODE_WITH_STATUS_RE = re.compile(
    r"(?<![\d.#-])([245]\d\d)[ -]\(?#?([245]\.\d{1,3}\.\d{1,3})(?![\d]|\.\d)"
)
_CODE_RE = re.compile(
    r"(?:^|said:?|[:;(\[]|\s)\s*([45]\d\d)(?=[ -][A-Za-z<#(\[]|\s*$|[ -]\d\.\d)", re.M
)
_DAEMON_LOCAL = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|post_?master|mdaemon|mail[-_.]?delivery[-_.]?"
    r"(?:system|subsystem)?|mailerdaemon|bounces?|mail-noreply|double-bounce|nobody|"
    r"mail\.?delivery\.?system|mailadmin|mailmaster|returns?|noreply-dsn|ndr|nrpt|"
    r"mail-router|smtp-gw|daemon|mmdf|x400)$",
    re.I,
)
_DAEMON_NAME = re.compile(
    r"mail delivery (?:system|subsystem|service)|mailer[- ]daemon|postmaster|"
    r"delivery status notification|microsoft outlook|mail administrator|"
    r"mail system|bounce",
    re.I,
)
_SUBJECT_BOUNCE = re.compile(
    r"undeliver|undelivered|not delivered|non[- ]?deliver|delivery (?:status )?(?:notification|"
    r"failure|failed|problem|report|error)|failure notice|returned mail|return(?:ed)? to sender|"
    r"mail delivery (?:failed|failure|problem)|could not (?:be )?deliver|delivery has failed|"
    r"mail system error|mail failed|returning to sender|"
    r"message (?:not delivered|delivery failed|rejected)|rejected:|"
    r"warning: could not send|delayed mail|delivery (?:delayed|delay)|"
    r"unzustellbar|nicht zustellbar|non remis|non distribuable|no se puede entregar|"
    r"no entregado|n[ãa]o entregue|non recapitabile|onbestelbaar|permanent error|"
    r"mail could not be delivered|bounce|ndn:|deliveryfailure|notification d'[ée]tat|"
    r"returned message|mail failure|failed delivery|fehlgeschlagen|error sending",
    re.I,
)
_FAILURE_TEXT = re.compile(
    r"could not be delivered|couldn't be delivered|was not delivered|wasn't delivered|"
    r"undeliverable|undelivered|delivery (?:has )?failed|delivery to the following|did not reach|"
    r"not a valid (?:user|recipient|address)|no longer in use|"
    r"permanent(?:ly)? (?:fatal )?(?:error|failure|failed)|failed permanently|"
    r"unable to deliver|wasn't able to deliver|not able to deliver|could not deliver|"
    r"(?:message|mail) (?:was )?(?:rejected|returned|refused)|returned mail|"
    r"following (?:address|recipient)[^\n]{0,40}(?:failed|error|rejected)|"
    r"user unknown|unknown user|no such user|does not exist|mailbox (?:is )?full|over quota|"
    r"delivery (?:attempts? )?(?:failed|failure)|failed to deliver|couldn't deliver|"
    r"error (?:occurred|condition)|host unknown|rejected|not deliver|giving up|gave up|"
    r"fatal error|smtp error|has been (?:delayed|suspended)|delay|could not send|retry|"
    r"not found|no longer|can ?not be delivered|invalid (?:recipient|address|mailbox)|"
    r"nicht zugestellt|unzustellbar|n'a pas pu|no se pudo|non [èe] stato|kon niet",
    re.I,
)
_MAILBOX_GONE = re.compile(
    r"(?:inbox|mailbox|address|account|e-?mail)[^\n]{0,60}\b(?:is )?no longer (?:in use|active|"
    r"valid|exists?|monitored)|not a valid user here|that's not a valid user",
    re.I,
)
_DELAY_TEXT = re.compile(
    r"has not (?:yet )?been delivered|not yet been delivered|will (?:continue to )?(?:retry|"
    r"try again|keep trying|be retried|attempt)|still (?:trying|being retried)|"
    r"this is a warning message only|do not need to resend|delivery (?:is )?delayed|"
    r"delayed mail|could not send message for past|message delayed|will be retried|"
    r"temporarily deferred|warning: message .{0,60} still undelivered",
    re.I,
)
_PERMANENT_TEXT = re.compile(
    r"permanent|given up|giving up|gave up|could not be delivered|couldn't be delivered|"
    r"failed permanently|delivery has failed|undeliverable|will not be (?:retried|delivered)|"
    r"was not delivered|unable to deliver",
    re.I,
)
# Where the returned original begins in a free-text report.
_ORIGINAL_START = re.compile(
    r"^(?:[-=_* ]*(?:this is a copy of|below this line is a copy|copy of the (?:original )?message|"
    r"original message(?: follows| headers)?|the original message|returned message|"
    r"undelivered message|unsent message below|message headers follow|original mail|"
    r"headers of (?:the )?(?:original|returned|your) message|"
    r"your message (?:reads|was|follows)[^\n]{0,20}(?:\(in part\))?:|"
    r"the text you sent follows|text of (?:the )?message follows|"
    r"the message you sent|original message headers|--- original message ---)|"
    r"(?:content-type: message/rfc822))",
    re.I | re.M,
)
_HEADER_LINE = re.compile(
    r"^\s*(?:from|reply-to|sender|return-path|message-id|in-reply-to|references|received|"
    r"x-[a-z-]+|dkim-signature|authentication-results|envelope-from|list-[a-z]+|"
    r"errors-to|mail from|sent by|disposition-notification-to)\s*[:=]",
    re.I,
)
_RECIPIENT_CONTEXT = re.compile(
    r"rcpt to|recipient|to:|to <|address|delivered to|deliver to|for <|mailbox|user|"
    r"failed|error|rejected|unknown|said|no such|not found|destinataire|empf[aä]nger",
    re.I,
)
_MESSAGE_ID_IN_TEXT = re.compile(r"^[ \t>]*message-id\s*:\s*(<[^<>\s]{3,250}>)", re.I | re.M)
_MID_RE = re.compile(r"<[^<>\s]{3,250}>")


# --- helpers ---------------------------------------------------------------------------------


def _fields(block: str) -> dict[str, str]:
    """RFC 822-style fields of one DSN block (continuation lines joined, names lower-case)."""
    out: dict[str, str] = {}
    name = ""
    for line in block.split("\n")[:200]:
        if not line.strip():
            continue
        if line[0] in " \t" and name:
            out[name] += " " + line.strip()
            continue
        if ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if re.fullmatch(r"[a-z0-9-]{1,40}", key):
                name = key
                out.setdefault(name, "")
                out[name] = (out[name] + " " + value.strip()).strip()
                continue
        if name:
            out[name] += " " + line.strip()
    return out


def _strip_type(value: str) -> str:
    """Drop the address/diagnostic type prefix ("rfc822;", "smtp;", "X-Unix;")."""
    return re.sub(r"^\s*[A-Za-z0-9-]{1,20}\s*;\s*", "", value).strip()


def _clean_address(value: str) -> str:
    value = _strip_type(value)
    match = _ADDR_RE.search(value)
    if match:
        return match.group(1).strip("'`").lower()
    return value.strip().strip("<>").lower()


def _codes(text: str) -> tuple[str | None, str | None]:
    """(reply code, enhanced status) the text mentions first, preferring a paired "550 5.1.1"."""
    text = text[:6000]
    match = _CODE_WITH_STATUS_RE.search(text)
    if match:
        return match.group(1), match.group(2)
    code_match = _CODE_RE.search(text)
    status_match = _STATUS_RE.search(text)
    code = code_match.group(1) if code_match else None
    status = status_match.group(0) if status_match else None
    return code, status


def _normalise_status(value: str | None) -> str | None:
    if not value:
        return None
    match = _STATUS_RE.search(value)
    return match.group(0) if match else None


def _is_daemon_address(addr: str) -> bool:
    local = addr.split("@", 1)[0]
    return bool(_DAEMON_LOCAL.match(local))


def report_text(view: InboundMessage) -> str:
    """The human-readable part of the report (not the returned message)."""
    texts = [p.text for p in view.text_parts if p.depth == 0]
    if not texts or not any(t.strip() for t in texts):
        texts = [html_to_plain(p.text) for p in view.html_parts if p.depth == 0]
    return "\n".join(texts)


def _split_original(text: str) -> tuple[str, str]:
    """(report, returned original) split at the first 'copy of the message' marker."""
    match = _ORIGINAL_START.search(text)
    if match and match.start() > 0:
        return text[: match.start()], text[match.start():]
    # A bare header block ("Return-Path:"/"Received:" at line start after a blank line) also
    # starts the original in qmail- and Sendmail-style reports.
    match = re.search(
        r"\n\n(?=(?:Return-Path|Received|Message-I[Dd]|From|Date|DKIM-Signature):)", text
    )
    if match and match.start() > 40:
        return text[: match.start()], text[match.start():]
    return text, ""


def _own_addresses(view: InboundMessage) -> set[str]:
    own: set[str] = set()
    # not X-Original-To: some MTAs (DragonFly) stamp the failed recipient there
    for name in ("to", "cc", "delivered-to", "from", "return-path", "sender", "reply-to",
                 "errors-to"):
        for value in view.get_all(name):
            own.update(m.group(1).lower() for m in _ADDR_RE.finditer(value))
    for headers in view.attached_headers:
        for key, value in headers:
            if key in ("from", "sender", "reply-to", "return-path", "errors-to"):
                own.update(m.group(1).lower() for m in _ADDR_RE.finditer(value))
    return own


def _message_ids(view: InboundMessage, original_text: str) -> list[str]:
    own = view.get("message-id") or ""
    ids: list[str] = []
    for headers in view.attached_headers:
        for key, value in headers:
            if key == "message-id":
                ids.extend(_MID_RE.findall(value)[:1])
    for match in _MESSAGE_ID_IN_TEXT.finditer(original_text[:200000]):
        ids.append(match.group(1))
    out: list[str] = []
    for mid in ids:
        if mid not in out and mid not in own:
            out.append(mid)
    return out[:10]


def looks_machine_made(view: InboundMessage) -> bool:
    sender = view.from_address
    from_header = view.get("from") or ""
    return_path = (view.get("return-path") or "").strip()
    auto = (view.get("auto-submitted") or "").strip().lower()
    return bool(
        (sender and _is_daemon_address(sender))
        or _DAEMON_NAME.search(from_header.split("<")[0])
        or (return_path in ("<>", "") and view.get("return-path") is not None)
        or (auto and auto != "no")
        or view.get("x-failed-recipients")
    )


# --- structured reports ----------------------------------------------------------------------


def _mta_fields(source: str) -> str:
    """The Reporting-MTA and Remote-MTA host names of a delivery-status part."""
    return " ".join(m.group(1) for m in re.finditer(
        r"^(?:reporting|remote|received-from)-mta:\s*(?:[a-z0-9-]{1,20};)?\s*(\S{1,255})",
        source[:20000], re.I | re.M))


def _recipient_blocks(source: str) -> list[str]:
    """The DSN's blocks (RFC 3464 §2.1: separated by blank lines); some servers (AOL) omit the
    blank line between recipients, so a second Final-Recipient also starts a block."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", source.replace("\r", "")):
        current: list[str] = []
        seen_final = seen_action = False
        for line in block.split("\n"):
            lower = line.lower()
            if seen_final and (
                lower.startswith("final-recipient:")
                or (lower.startswith("original-recipient:") and seen_action)
            ):
                out.append("\n".join(current))
                current, seen_final, seen_action = [], False, False
            if lower.startswith("final-recipient:"):
                seen_final = True
            if seen_final and lower.startswith(("action:", "status:")):
                seen_action = True
            current.append(line)
        out.append("\n".join(current))
    return out


def _structured(view: InboundMessage, text: str, sources: list[str]) -> list[RecipientStatus]:
    rows: list[RecipientStatus] = []
    everyone = [
        _clean_address(m.group(1))
        for source in sources
        for m in re.finditer(r"^(?:final|original)-recipient:(.*)$", source, re.I | re.M)
    ]
    for source in sources:
        for block in _recipient_blocks(source):
            f = _fields(block)
            rcpt_field = f.get("final-recipient") or f.get("original-recipient") or ""
            if not rcpt_field:
                continue
            if len(rows) >= MAX_RECIPIENTS:
                break
            recipient = _clean_address(rcpt_field)
            action = (f.get("action") or "").strip().lower().split()[0:1]
            action_s = action[0] if action else ""
            status = _normalise_status(f.get("status"))
            raw_diag = f.get("diagnostic-code", "")
            diag = _strip_type(raw_diag)
            code, diag_status = _codes(diag)
            if not action_s:
                action_s = "failed" if not status or status[0] == "5" else "delayed"
            context = raw_diag
            local = _context_for(text, recipient, everyone)
            if not diag.strip() or reason_for(diag, None, None) == "undefined":
                context = f"{raw_diag}\n{local}"
            if code is None and local:
                code = _codes(local)[0]
            if status is None:
                status = diag_status or _codes(local)[1]
            elif status.endswith(".0.0"):
                # the remote server's own code is more specific; with no Diagnostic-Code, the
                # reply quoted for this recipient in the human-readable part
                specific = diag_status or (None if diag.strip() else _codes(local)[1])
                if specific and not specific.endswith(".0.0") and specific[0] == status[0]:
                    status = specific
            if action_s == "delivered" or (status and status.startswith("2")):
                reason = "delivered"
            elif action_s == "delayed" and reason_for(context, None, None) in _VAGUE_REASONS:
                # still being retried and the server named no specific cause: the message is
                # ageing in the queue (sisimai calls that "expired")
                reason = "expired"
            else:
                reason = refine_by_phase(reason_for(context, status, code), f"{diag}\n{local}",
                                         status)
                reason = refine_by_permanence(reason, status, code)
                hosts = " ".join([view.from_address, recipient, _mta_fields(source)])
                reason = provider_reason(hosts, f"{diag}\n{local}") or reason
            rows.append(RecipientStatus(
                recipient=recipient,
                status=status,
                reply_code=code,
                reason=reason,
                hard=action_s == "failed" and is_hard(reason, status, code),
                action=action_s,
            ))
    return rows


# --- free-text reports -----------------------------------------------------------------------


def _context_for(text: str, recipient: str, others: list[str]) -> str:
    """The report text about one recipient: from where it is named to where the next is."""
    low = text.lower()
    start = low.find(recipient.lower()) if recipient else -1
    if start < 0:
        return ""
    line_start = low.rfind("\n", 0, start) + 1
    end = len(text)
    for other in others:
        if other == recipient:
            continue
        pos = low.find(other.lower(), start + len(recipient))
        if 0 <= pos < end:
            end = low.rfind("\n", 0, pos) + 1 or pos
    return text[line_start: min(end, line_start + 3000)]


def _free_text_recipients(view: InboundMessage, report: str) -> list[str]:
    own = _own_addresses(view)
    mids = set(re.findall(r"[^<>\s]+@[^<>\s]+", " ".join(
        [view.get("message-id") or ""] + [v for h in view.attached_headers for k, v in h
                                          if k in ("message-id", "in-reply-to", "references")]
    ).lower()))
    contextual: list[str] = []
    plain: list[str] = []
    daemons: list[str] = []
    for line in report.split("\n")[:2000]:
        if _HEADER_LINE.match(line):
            continue
        for match in _ADDR_RE.finditer(line):
            addr = match.group(1).strip("'`.").lower()
            if addr in own or addr in mids:
                continue
            if _is_daemon_address(addr):
                if addr not in daemons:
                    daemons.append(addr)
                continue
            lower = line.lower()
            if re.search(r"\d{6,}|[0-9a-f]{16,}", addr.split("@")[0]) and (
                "<" + addr in lower and "message" in lower
            ):
                continue  # a Message-ID quoted in the text, not a mailbox
            stripped = line.strip().strip("<>:;,.'\"").strip()
            alone = stripped.lower().replace("mailto:", "") in (addr, f"{addr}>", f"<{addr}")
            if alone or re.fullmatch(
                r"[\s<\"']*" + re.escape(addr) + r"[\s>\"']*(?:<mailto:[^>]*>)?[\s:;,.]*.*",
                line.lower()[:300],
            ) or _RECIPIENT_CONTEXT.search(line):
                if addr not in contextual:
                    contextual.append(addr)
            elif addr not in plain:
                plain.append(addr)
    return contextual or plain or daemons[:1]


def _free_text(view: InboundMessage, report: str, original: str) -> list[RecipientStatus]:
    recipients: list[str] = []
    failed_header = view.get_all("x-failed-recipients")
    for value in failed_header:
        for match in _ADDR_RE.finditer(value):
            addr = match.group(1).lower()
            if addr not in recipients:
                recipients.append(addr)
    if not recipients:
        recipients = _free_text_recipients(view, report)[:50]
    if not recipients:
        # AOL-style: bare local parts listed under "the following recipients", at the domain
        # of the reporting system
        domain = view.from_address.rpartition("@")[2]
        listed = re.search(
            r"following recipients?[^\n]{0,120}:\s*\n((?:[ \t]+[\w.+-]{1,64}\s*\n){1,20})",
            report[:20000], re.I,
        )
        if domain and listed:
            recipients = [f"{local.strip().lower()}@{domain}"
                          for local in listed.group(1).split("\n") if local.strip()]
    if not recipients and _MAILBOX_GONE.search(report[:5000]):
        # a responder announcing its own address is dead: the address it names, or itself
        named = _ADDR_RE.search(report[:5000])
        recipients.append(named.group(1).lower() if named else view.from_address)
    if not recipients and original:
        to_line = re.search(r"^To:\s*(.{1,300})$", original[:20000], re.M | re.I)
        if to_line and first_address(to_line.group(1)):
            recipients.append(first_address(to_line.group(1)))
    if not recipients:
        # Fall back to the returned original's To: when the report names nobody.
        for headers in view.attached_headers:
            for key, value in headers:
                if key == "to":
                    addr = first_address(value)
                    if addr:
                        recipients.append(addr)
            if recipients:
                break
    delayed = bool(_DELAY_TEXT.search(report) or _DELAY_TEXT.search(view.subject)) and not (
        _PERMANENT_TEXT.search(report.replace("not been delivered", ""))
    )
    rows: list[RecipientStatus] = []
    for recipient in recipients or [""]:
        context = _context_for(report, recipient, recipients) if recipient else ""
        code, status = _codes(context)
        if code is None and status is None:
            code, status = _codes(report)
        elif code is None:
            code = _codes(report)[0]
        reason = reason_for(context, status, code) if context else "undefined"
        basis = context or report
        if reason == "undefined":
            reason = reason_for(report, status, code)
            basis = report  # the words that decided it are the ones to qualify it
        reason = refine_by_phase(reason, basis, status)
        reason = refine_by_permanence(reason, status, code)
        hosts = " ".join([view.from_address, recipient, report[:5000]])
        reason = provider_reason(hosts, basis) or reason
        if reason == "undefined" and recipient.endswith("@googlegroups.com"):
            # Google Groups refuses posts to a group that is gone or closed to the sender
            reason = "rejected"
        if delayed and reason in ("undefined", "networkerror", "systemerror"):
            reason = "expired" if reason == "undefined" else reason
        action = "delayed" if delayed else "failed"
        rows.append(RecipientStatus(
            recipient=recipient,
            status=status,
            reply_code=code,
            reason=reason,
            hard=action == "failed" and is_hard(reason, status, code),
            action=action,
        ))
    return rows


# --- entry -----------------------------------------------------------------------------------


def sns_notification(view: InboundMessage) -> dict[str, Any] | None:
    """An Amazon SES event delivered as an SNS e-mail notification (a JSON body)."""
    first = next((p.text for p in view.text_parts if p.depth == 0), "")
    if "notificationtype" not in first[:200].lower():
        return None
    body = first
    start = body.find("{")
    end = body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(body[start: end + 1], strict=False)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _sns_bounce(data: dict[str, Any]) -> DeliveryReport | None:
    if str(data.get("notificationType", "")).lower() != "bounce":
        return None
    bounce = data.get("bounce") or {}
    permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
    rows: list[RecipientStatus] = []
    for item in bounce.get("bouncedRecipients") or []:
        if not isinstance(item, dict):
            continue
        recipient = _clean_address(str(item.get("emailAddress", "")))
        status = _normalise_status(str(item.get("status") or ""))
        diag = _strip_type(str(item.get("diagnosticCode") or ""))
        code, diag_status = _codes(diag)
        status = status or diag_status
        reason = reason_for(diag, status, code)
        if reason == "undefined":
            sub = str(bounce.get("bounceSubType", "")).lower()
            reason = {"noemail": "userunknown", "suppressed": "suppressed",
                      "mailboxfull": "mailboxfull", "messagetoolarge": "mesgtoobig",
                      "contentrejected": "contenterror"}.get(sub, "undefined")
        action = str(item.get("action") or ("failed" if permanent else "delayed")).lower()
        rows.append(RecipientStatus(recipient, status, code, reason,
                                    action == "failed" and is_hard(reason, status, code), action))
    if not rows:
        return None
    mail = data.get("mail") or {}
    ids = [f"<{mail['messageId']}>"] if isinstance(mail, dict) and mail.get("messageId") else []
    return DeliveryReport(recipients=rows, original_message_ids=ids)


def parse_delivery_report(view: InboundMessage) -> DeliveryReport | None:
    """The delivery report in ``view``, or ``None`` when the message is not one."""
    sns = sns_notification(view)
    if sns is not None:
        return _sns_bounce(sns)
    text = report_text(view)
    report, original = _split_original(text)
    structured = bool(view.delivery_status) or (
        view.content_type == "multipart/report" and view.report_type == "delivery-status"
    )
    rows: list[RecipientStatus] = []
    if view.delivery_status:
        rows = _structured(view, report, view.delivery_status)
    elif re.search(r"(?im)^final-recipient:", text[:100000]) and (
        looks_machine_made(view) or _daemon_sender(view)
    ):
        # RFC 3464 fields written into the text (old MTAs, a lost MIME structure)
        rows = _structured(view, report, [text[:100000]])
    if not rows:
        if not structured and not _looks_like_free_text_bounce(view, report):
            return None
        rows = _free_text(view, report, original)
        if not rows or (not structured and not any(r.recipient for r in rows)
                        and not view.get("x-failed-recipients")
                        and not _SUBJECT_BOUNCE.search(view.subject)
                        and not _daemon_sender(view)):
            return None
    # a bounce whose DSN names nobody still counts if the server says who failed elsewhere
    result = DeliveryReport(recipients=rows)
    result.original_message_ids = _message_ids(view, original or text)
    return result


def _daemon_sender(view: InboundMessage) -> bool:
    """The sender is a mail system: its address (MAILER-DAEMON, postmaster ...), or its display
    name together with a null return path or a bounce subject (a display name alone is only
    a name)."""
    sender = view.from_address
    if sender and _is_daemon_address(sender):
        return True
    named = bool(_DAEMON_NAME.search((view.get("from") or "").split("<")[0]))
    return named and (
        (view.get("return-path") or "").strip() == "<>"
        or bool(_SUBJECT_BOUNCE.search(view.subject))
        or view.get("auto-submitted") is not None
    )


def _looks_like_free_text_bounce(view: InboundMessage, report: str) -> bool:
    if view.get("x-failed-recipients"):
        return True
    subject = view.subject
    daemon = _daemon_sender(view)
    if not daemon and re.match(r"\s*(?:re|aw|sv|antw|r|fw|fwd|wg|tr|rv)\s*:", subject, re.I):
        return False  # a person answering or forwarding a bounce is not a bounce
    machine = looks_machine_made(view)
    subject_hit = bool(_SUBJECT_BOUNCE.search(subject))
    failure = bool(_FAILURE_TEXT.search(report[:20000]))
    if daemon and (subject_hit or failure):
        return True
    if machine and not subject_hit and _MAILBOX_GONE.search(report[:5000]):
        # an RFC 3834 responder saying the address is dead is a bounce in all but form
        return True
    return machine and subject_hit and failure
