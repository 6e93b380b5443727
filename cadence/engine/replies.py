"""Reply tracking policy: what a message that arrived in a watched mailbox does to cadences.

``ReplyTracker.handle`` is the mailbox watcher's sink.  For one message:

1. **Classify** (``cadence.mail.classify``, a pure function, outside any transaction).
2. **Dedupe** by (mailbox, Message-ID): a UIDVALIDITY resync or a crash between our commit and
   the checkpoint hands a message over twice; the second time changes nothing.
3. **Match** it to what we sent, first hit wins:
   ``references`` - every id in In-Reply-To and References (and, for a bounce or a complaint,
   the original Message-ID quoted inside it) against our Message-IDs, the provider's rewritten
   ones and the earlier ids of a re-sent step; ``thread_index`` - Outlook's Thread-Index
   conversation GUID (our messages carry one, see ``cadence.mail.mime``); ``recipient`` - a
   bounce naming an enrolled prospect; ``address`` / ``domain`` - the mailbox's fallback
   setting: mail from an enrolled prospect we wrote to (or anyone at their domain) counts as
   their reply.
4. **Act**: reply -> enrollment ``replied`` (and the prospect's other enrollments when the
   cadence says so); hard bounce -> prospect undeliverable, its enrollments ``bounced``; soft
   bounce -> the step is sent again later with a new Message-ID (bounded), then ``bounced``;
   out-of-office -> ``paused`` until the next business day after the return date, then it
   resumes where it was; complaint -> prospect opted out, enrollments ``opted_out``; delivery
   reports and anything else -> recorded only.  Each action writes an activity row naming the
   inbound message and queues a webhook event, in the same transaction.

Services never commit: ``handle`` opens one short transaction of its own (the watcher holds
no session across IMAP I/O) and everything in it commits or nothing does.  A message that
cannot be processed raises; the watcher then calls ``quarantine``, which keeps its bytes and
error for ``cadence quarantine retry``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cadence.engine.events import queue_event
from cadence.engine.mailbox_sync import InboundMessage as FetchedInbound
from cadence.engine.scheduling import Clock, add_business_days, localize, parse_holidays, zone
from cadence.errors import CadenceError
from cadence.mail.classify import Classification, MalformedMessageError, classify_view
from cadence.mail.dsn import FAILED_ACTIONS
from cadence.mail.inbound import InboundMessage as MessageView
from cadence.mail.inbound import MalformedMessage, first_address, parse_inbound
from cadence.mail.mime import domain_of, make_message_id, parse_thread_index, to_bytes
from cadence.store.db import Database
from cadence.store.models import (
    Enrollment,
    EnrollmentState,
    Mailbox,
    OutboundMessage,
    OutboundState,
    Prospect,
)
from cadence.store.repositories import (
    ActivityRepository,
    CadenceRepository,
    EnrollmentRepository,
    MailboxRepository,
    ProspectRepository,
)
from cadence.store.tracking_models import InboundMessage as InboundRow
from cadence.store.tracking_models import QuarantinedMessage
from cadence.store.tracking_repositories import (
    OPEN_STATES,
    InboundRepository,
    MatchRepository,
    QuarantineRepository,
)

log = logging.getLogger("cadence.replies")

_MSGID = re.compile(r"<[^<>\s]{1,250}>")
_ORIGINATOR_FIELDS = ("from", "sender", "date", "subject", "to", "message-id")
# Mail services where one domain holds millions of unrelated people: "same domain" would stop
# every prospect who uses them.
FREEMAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "yahoo.com", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com", "gmx.de",
        "gmx.net", "web.de", "proton.me", "protonmail.com", "yandex.ru", "mail.ru",
        "orange.fr", "free.fr", "laposte.net", "libero.it", "qq.com", "163.com",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ReplyPolicy:
    # An out-of-office without a return date pauses this many business days.
    ooo_business_days: int = 3
    # A return date further away than this is not believed (a typo, a sabbatical notice).
    ooo_max_days: int = 90
    # A soft bounce (mailbox full, greylisted, ...) re-sends the step this many times, after
    # these delays, then gives up and stops the enrollment.
    soft_bounce_retries: int = 3
    soft_bounce_delays: tuple[timedelta, ...] = (
        timedelta(days=1),
        timedelta(days=2),
        timedelta(days=4),
    )


@dataclass
class Outcome:
    """What ``handle`` did with one message."""

    kind: str
    action: str  # replied, paused, bounced, retry, opted_out, recorded, ignored, duplicate
    inbound_id: int | None = None
    matched_by: str | None = None
    enrollment_ids: list[int] = field(default_factory=list)
    prospect_ids: list[int] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


@dataclass
class _Match:
    by: str | None = None
    outbound: OutboundMessage | None = None
    enrollments: list[Enrollment] = field(default_factory=list)


@dataclass(frozen=True)
class _Parsed:
    view: MessageView
    classification: Classification
    message_id: str
    from_address: str
    subject: str
    thread_guid: str | None
    original_ids: list[str]  # ids quoted inside a bounce or complaint
    complained: list[str]  # Original-Rcpt-To of a complaint


def parse_and_classify(raw: bytes, today: date) -> _Parsed:
    """The bytes, parsed once, with their classification.  Raises ``MalformedMessageError``."""
    try:
        view = parse_inbound(raw)
    except MalformedMessage as exc:
        raise MalformedMessageError(str(exc)) from exc
    try:
        classification = classify_view(view, today=today)
    except RecursionError as exc:
        raise MalformedMessageError("message structure too deeply nested") from exc
    if not any(view.get(name) for name in _ORIGINATOR_FIELDS):
        # Only the trace fields the delivering server prepends (Return-Path, Received, ...):
        # the bytes it was handed were not a message.
        raise MalformedMessageError(
            "not an email message: no From, Date, Subject, To or Message-ID header "
            "(RFC 5322 section 3.6), only the delivering server's trace fields"
        )
    found = _MSGID.findall(view.get("message-id") or "")
    message_id = found[0] if found else f"<{hashlib.sha256(raw).hexdigest()}@no-message-id>"
    originals: list[str] = []
    for headers in view.attached_headers:
        for key, value in headers:
            if key == "message-id":
                originals.extend(_MSGID.findall(value)[:1])
    complained: list[str] = []
    for report in view.feedback_reports:
        for m in re.finditer(
            r"^(?:original-rcpt-to|removal-recipient):\s*(.+)$", report, re.I | re.M
        ):
            address = first_address(m.group(1))
            if address:
                complained.append(address)
    return _Parsed(
        view=view,
        classification=classification,
        message_id=clean_text(message_id)[:500],
        from_address=clean_text(view.from_address)[:320],
        subject=clean_text(view.subject)[:1000],
        thread_guid=parse_thread_index(view.get("thread-index")),
        original_ids=originals[:20],
        complained=complained[:20],
    )


def clean_text(text: str) -> str:
    """What a database accepts: no NUL (PostgreSQL refuses it in text), no lone surrogates
    (undecodable header bytes, which no driver can encode)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def resume_at(
    mailbox: Mailbox, now: datetime, return_date: date | None, policy: ReplyPolicy
) -> datetime:
    """When an enrollment paused by an out-of-office resumes: the start of the mailbox's
    working day on the first business day after the return date (weekends and the mailbox's
    holidays skipped); without a date, ``ooo_business_days`` business days from now."""
    tz = zone(mailbox.timezone)
    holidays = parse_holidays(mailbox.holidays)
    start_h, _, start_m = (mailbox.work_from or "09:00").partition(":")
    opening = time(int(start_h), int(start_m or 0))
    today = now.astimezone(tz).date()
    if return_date is not None and today < return_date <= today + timedelta(
        days=policy.ooo_max_days
    ):
        base = localize(datetime.combine(return_date, opening), tz)
        days = 1
    else:
        base = localize(datetime.combine(today, opening), tz)
        days = 1 if return_date is not None else max(1, policy.ooo_business_days)
    return add_business_days(base, days, tz, holidays)


def _short(text: str | None, limit: int = 2000) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


class ReplyTracker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        policy: ReplyPolicy | None = None,
        *,
        on_event: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy or ReplyPolicy()
        self.on_event = on_event

    # -- the sink ----------------------------------------------------------------------------

    async def handle(self, message: FetchedInbound) -> Outcome:
        now = self.clock()
        parsed = parse_and_classify(message.raw, now.date())
        try:
            async with self.db.transaction() as s:
                outcome = await self._process(s, message, parsed, now)
        except IntegrityError:
            # Another worker recorded the same Message-ID first: it has acted on it.
            async with self.db.transaction() as s:
                if await InboundRepository(s).seen(message.mailbox_id, parsed.message_id):
                    return Outcome(parsed.classification.kind, "duplicate")
            raise
        if outcome.events and self.on_event is not None:
            self.on_event()
        if outcome.action not in ("duplicate", "recorded", "ignored"):
            log.info(
                "mailbox %s: %s from %s -> %s (%s) enrollments %s",
                message.mailbox_id,
                outcome.kind,
                parsed.from_address or "?",
                outcome.action,
                outcome.matched_by,
                outcome.enrollment_ids,
            )
        return outcome

    async def quarantine(self, message: FetchedInbound, exc: BaseException) -> int:
        """Keep a message that could not be processed, with its error (the watcher goes on)."""
        code = exc.code if isinstance(exc, CadenceError) else type(exc).__name__
        text = clean_text(exc.message if isinstance(exc, CadenceError) else str(exc))
        now = self.clock()
        async with self.db.transaction() as s:
            row = await QuarantineRepository(s).add(
                QuarantinedMessage(
                    mailbox_id=message.mailbox_id,
                    folder=message.folder,
                    uid=message.uid,
                    uidvalidity=message.uidvalidity,
                    raw=message.raw,
                    size=message.size,
                    truncated=message.truncated,
                    error_code=code[:80],
                    error_message=text[:2000] or type(exc).__name__,
                    created_at=now,
                )
            )
            ActivityRepository(s).log(
                "quarantined",
                f"message {message.folder}/{message.uid} quarantined: {text[:300]}",
                at=now,
                mailbox_id=message.mailbox_id,
                data={"quarantine_id": row.id, "error_code": code},
            )
            return row.id

    async def retry_quarantined(self, quarantine_id: int) -> tuple[bool, str]:
        """Process a quarantined message again.  Returns (resolved, what happened)."""
        async with self.db.transaction() as s:
            row = await QuarantineRepository(s).get(quarantine_id)
            if row is None:
                return False, "no such quarantined message"
            if row.resolved:
                return True, "already resolved"
            message = FetchedInbound(
                mailbox_id=row.mailbox_id or 0,
                folder=row.folder,
                uid=row.uid,
                uidvalidity=row.uidvalidity,
                raw=row.raw,
                size=row.size,
                truncated=row.truncated,
            )
        now = self.clock()
        try:
            outcome = await self.handle(message)
        except Exception as exc:
            code = exc.code if isinstance(exc, CadenceError) else type(exc).__name__
            text = clean_text(exc.message if isinstance(exc, CadenceError) else str(exc))
            async with self.db.transaction() as s:
                row = await QuarantineRepository(s).get(quarantine_id)
                assert row is not None
                row.attempts += 1
                row.retried_at = now
                row.error_code = code[:80]
                row.error_message = text[:2000] or type(exc).__name__
            return False, f"[{code}] {text}"
        async with self.db.transaction() as s:
            row = await QuarantineRepository(s).get(quarantine_id)
            assert row is not None
            row.attempts += 1
            row.retried_at = now
            row.resolved = True
            row.resolved_at = now
        return True, f"{outcome.kind}: {outcome.action}"

    # -- one message, in one transaction -----------------------------------------------------

    async def _process(
        self, s: AsyncSession, message: FetchedInbound, parsed: _Parsed, now: datetime
    ) -> Outcome:
        c = parsed.classification
        inbound = InboundRepository(s)
        if await inbound.seen(message.mailbox_id, parsed.message_id) is not None:
            return Outcome(c.kind, "duplicate")
        mailbox = await MailboxRepository(s).get(message.mailbox_id)
        if mailbox is None:
            raise CadenceError(f"mailbox {message.mailbox_id} is gone", code="unknown_mailbox")
        outcome = Outcome(c.kind, "recorded")
        row = InboundRow(
            mailbox_id=mailbox.id,
            folder=message.folder,
            uid=message.uid,
            uidvalidity=message.uidvalidity,
            message_id=parsed.message_id,
            from_address=parsed.from_address or None,
            subject=parsed.subject,
            kind=c.kind,
            reply_text=clean_text(c.reply_text) if c.reply_text is not None else None,
            return_date=c.auto_reply.return_date if c.auto_reply else None,
            bounce=_clean_json({"bounces": [b.to_dict() for b in c.bounces]}) if c.bounces else {},
            truncated=message.truncated,
            received_at=now,
            action="recorded",
        )
        matches = MatchRepository(s)
        own = await matches.outbound_by_ids([parsed.message_id])
        if own or (
            c.kind in ("reply", "auto_reply") and parsed.from_address == mailbox.address.lower()
        ):
            # Our own message (a copy filed in the inbox) or the rep writing: not a response.
            row.action = outcome.action = "ignored"
            await inbound.add(row)
            outcome.inbound_id = row.id
            return outcome
        match = await self._match(s, mailbox, parsed)
        row.matched_by = outcome.matched_by = match.by
        row.outbound_id = match.outbound.id if match.outbound else None
        if match.enrollments:
            row.enrollment_id = match.enrollments[0].id
            row.prospect_id = match.enrollments[0].prospect_id
        await inbound.add(row)
        outcome.inbound_id = row.id
        act = _Act(self, s, mailbox, row, parsed, match, now, outcome)
        if c.kind == "reply":
            await act.reply()
        elif c.kind == "auto_reply":
            await act.out_of_office()
        elif c.kind == "bounce":
            await act.bounce()
        elif c.kind == "feedback":
            await act.complaint()
        row.action = outcome.action
        await s.flush()
        return outcome

    async def _match(self, s: AsyncSession, mailbox: Mailbox, parsed: _Parsed) -> _Match:
        c = parsed.classification
        matches = MatchRepository(s)
        enrollments = EnrollmentRepository(s)
        ids = list(c.in_reply_to)
        if c.kind in ("bounce", "feedback", "delivery_report"):
            ids += [i for i in parsed.original_ids if i not in ids]
        outbounds = await matches.outbound_by_ids(ids)
        by = "references"
        if not outbounds and parsed.thread_guid:
            outbounds = await matches.outbound_by_thread_guid(mailbox.id, parsed.thread_guid)
            by = "thread_index"
        if outbounds:
            # The latest message of the thread we know (a reply quotes the whole thread).
            best = max(outbounds, key=lambda o: (o.step_position, o.id))
            found: list[Enrollment] = []
            if best.enrollment_id is not None:
                enrollment = await enrollments.claim_any(best.enrollment_id)
                if enrollment is not None:
                    found.append(enrollment)
            return _Match(by, best, found)
        if c.kind == "bounce":
            recipients = [b.recipient for b in c.bounces if b.recipient]
            prospects = await matches.prospects_by_emails(recipients)
            found = [
                e
                for e in await matches.open_enrollments_of([p.id for p in prospects])
                if e.mailbox_id == mailbox.id
            ]
            return _Match("recipient" if found else None, None, found)
        if c.kind == "feedback" and parsed.complained:
            prospects = await matches.prospects_by_emails(parsed.complained)
            found = await matches.open_enrollments_of([p.id for p in prospects])
            return _Match("recipient" if found else None, None, found)
        if c.kind not in ("reply", "auto_reply") or not parsed.from_address:
            return _Match()
        setting = (mailbox.reply_fallback or "off").lower()
        if setting in ("address", "domain"):
            found = await matches.sent_enrollments_of(mailbox.id, email=parsed.from_address)
            if found:
                return _Match("address", None, found)
        if setting == "domain":
            domain = domain_of(parsed.from_address)
            if domain and domain not in FREEMAIL_DOMAINS:
                found = await matches.sent_enrollments_of(mailbox.id, domain=domain)
                if found:
                    return _Match("domain", None, found)
        return _Match()


class _Act:
    """The actions for one matched message (inside ``_process``'s transaction)."""

    def __init__(
        self,
        tracker: ReplyTracker,
        s: AsyncSession,
        mailbox: Mailbox,
        row: InboundRow,
        parsed: _Parsed,
        match: _Match,
        now: datetime,
        outcome: Outcome,
    ) -> None:
        self.tracker = tracker
        self.s = s
        self.mailbox = mailbox
        self.row = row
        self.parsed = parsed
        self.match = match
        self.now = now
        self.outcome = outcome
        self.activity = ActivityRepository(s)

    # -- shared ------------------------------------------------------------------------------

    def _open(self) -> list[Enrollment]:
        return [e for e in self.match.enrollments if e.state in OPEN_STATES]

    def _inbound_data(self) -> dict[str, Any]:
        return {
            "inbound_id": self.row.id,
            "message_id": self.parsed.message_id,
            "from": self.parsed.from_address,
            "subject": self.parsed.subject,
            "kind": self.parsed.classification.kind,
            "matched_by": self.match.by,
            "folder": self.row.folder,
        }

    async def _event_data(
        self, enrollment: Enrollment | None, prospect: Prospect | None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"mailbox": self.mailbox.address, "inbound": self._inbound_data()}
        if enrollment is not None:
            cadence = await CadenceRepository(self.s).get(enrollment.cadence_id)
            data["enrollment"] = {
                "id": enrollment.id,
                "state": enrollment.state,
                "step": enrollment.current_step + 1,
                "cadence": cadence.name if cadence else None,
                "reason": enrollment.reason,
                "paused_until": (
                    enrollment.paused_until.isoformat() if enrollment.paused_until else None
                ),
            }
            if prospect is None:
                prospect = await ProspectRepository(self.s).get(enrollment.prospect_id)
        if prospect is not None:
            data["prospect"] = {
                "id": prospect.id,
                "email": prospect.email,
                "first_name": prospect.first_name,
                "last_name": prospect.last_name,
                "company": prospect.company,
            }
        return data

    async def _record(
        self,
        activity_kind: str,
        event_type: str,
        text: str,
        *,
        enrollment: Enrollment | None = None,
        prospect: Prospect | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        data = self._inbound_data()
        data.update(extra or {})
        self.activity.log(
            activity_kind,
            text,
            at=self.now,
            mailbox_id=self.mailbox.id,
            enrollment_id=enrollment.id if enrollment else None,
            prospect_id=prospect.id
            if prospect
            else (enrollment.prospect_id if enrollment else None),
            data=data,
        )
        payload = await self._event_data(enrollment, prospect)
        payload.update(extra or {})
        await queue_event(self.s, event_type, payload, now=self.now)
        self.outcome.events.append(event_type)
        if enrollment is not None and enrollment.id not in self.outcome.enrollment_ids:
            self.outcome.enrollment_ids.append(enrollment.id)
        pid = prospect.id if prospect else (enrollment.prospect_id if enrollment else None)
        if pid is not None and pid not in self.outcome.prospect_ids:
            self.outcome.prospect_ids.append(pid)

    def _stop(self, enrollment: Enrollment, state: str, reason: str) -> None:
        enrollment.state = state
        enrollment.reason = reason
        enrollment.next_due_at = None
        enrollment.paused_until = None
        enrollment.updated_at = self.now

    # -- reply -------------------------------------------------------------------------------

    async def reply(self) -> None:
        targets = self._open()
        if not targets:
            return
        who = self.parsed.from_address or "the prospect"
        stop_others: set[int] = set()
        for enrollment in targets:
            self._stop(enrollment, EnrollmentState.REPLIED, f"replied ({who})")
            await self._record(
                "replied",
                "enrollment.replied",
                f"{who} replied; the cadence stopped",
                enrollment=enrollment,
                extra={"reply_text": _short(self.row.reply_text)},
            )
            cadence = await CadenceRepository(self.s).get(enrollment.cadence_id)
            if cadence is not None and cadence.stop_others_on_reply:
                stop_others.add(enrollment.prospect_id)
        done = {e.id for e in targets}
        for other in await MatchRepository(self.s).open_enrollments_of(sorted(stop_others)):
            if other.id in done:
                continue
            self._stop(other, EnrollmentState.REPLIED, f"replied to another cadence ({who})")
            await self._record(
                "replied",
                "enrollment.replied",
                f"{who} replied to another cadence; this one stopped too",
                enrollment=other,
            )
        self.outcome.action = "replied"

    # -- out of office -----------------------------------------------------------------------

    async def out_of_office(self) -> None:
        auto = self.parsed.classification.auto_reply
        returns = auto.return_date if auto else None
        until = resume_at(self.mailbox, self.now, returns, self.tracker.policy)
        changed = False
        for enrollment in self._open():
            if enrollment.state == EnrollmentState.PAUSED and enrollment.paused_until is None:
                continue  # held for a person (template, unknown outcome): not ours to resume
            # Resume where it was: never earlier than the step was due anyway.
            due = enrollment.next_due_at or enrollment.paused_until
            resume = max(until, due) if due is not None else until
            enrollment.state = EnrollmentState.PAUSED
            enrollment.paused_until = resume
            enrollment.next_due_at = None
            enrollment.updated_at = self.now
            back = returns.isoformat() if returns else "no return date given"
            enrollment.reason = (
                f"out of office ({back}); resumes {resume.isoformat(timespec='minutes')}"
            )
            await self._record(
                "out_of_office",
                "enrollment.paused",
                f"out-of-office reply ({back}); paused until {resume.isoformat()}",
                enrollment=enrollment,
                extra={
                    "return_date": returns.isoformat() if returns else None,
                    "resumes_at": resume.isoformat(),
                },
            )
            changed = True
        if changed:
            self.outcome.action = "paused"

    # -- bounces -----------------------------------------------------------------------------

    async def bounce(self) -> None:
        c = self.parsed.classification
        failed = [b for b in c.bounces if b.action in FAILED_ACTIONS] or list(c.bounces)
        hard = [b for b in failed if b.hard]
        outbound = self.match.outbound
        # A hard bounce says the address is dead, whichever message revealed it.
        hard_addresses = {b.recipient.lower() for b in hard if b.recipient}
        if outbound is not None and hard and not hard_addresses:
            hard_addresses.add(outbound.rcpt_to.lower())
        if hard_addresses:
            prospects = await MatchRepository(self.s).prospects_by_emails(sorted(hard_addresses))
            if not prospects and outbound is not None:
                # The final address behind the one we wrote to (a forward) is dead: mail to
                # our prospect cannot arrive either.
                prospects = await MatchRepository(self.s).prospects_by_emails([outbound.rcpt_to])
            reason_of = {b.recipient.lower(): b for b in hard}
            for prospect in prospects:
                b = reason_of.get(prospect.email) or (hard[0] if hard else None)
                why = (
                    f"hard bounce: {b.status or b.reply_code or ''} {b.reason}".strip()
                    if b
                    else "hard bounce"
                )
                await self._undeliverable(prospect, why)
            if prospects:
                self.outcome.action = "bounced"
                return
        if outbound is None or not failed:
            return
        await self._soft_bounce(outbound, failed[0])

    async def _undeliverable(self, prospect: Prospect, why: str) -> None:
        first = not prospect.undeliverable
        prospect.undeliverable = True
        prospect.undeliverable_reason = why[:500]
        for enrollment in await MatchRepository(self.s).open_enrollments_of([prospect.id]):
            self._stop(enrollment, EnrollmentState.BOUNCED, why)
            await self._record(
                "bounced",
                "enrollment.bounced",
                f"{prospect.email}: {why}; the cadence stopped",
                enrollment=enrollment,
            )
        if first:
            await self._record(
                "undeliverable",
                "prospect.undeliverable",
                f"{prospect.email} marked undeliverable ({why})",
                prospect=prospect,
                extra={"reason": why},
            )

    async def _soft_bounce(self, outbound: OutboundMessage, bounce: Any) -> None:
        """Send the step again later with a new Message-ID (bounded), then give up.

        The outbound row stays the one row of (enrollment, step): its ``bounce_retries``
        counts the attempts, its earlier Message-IDs become aliases (a late reply to one still
        matches), and it goes back to ``retry`` so the sending engine sends it exactly once
        more, with the usual lease and Sent-folder recovery."""
        if outbound.enrollment_id is None:
            return
        enrollment = await EnrollmentRepository(self.s).claim_any(outbound.enrollment_id)
        # A finished enrollment whose last step bounced softly gets that step again too.
        if enrollment is None or enrollment.state not in (*OPEN_STATES, EnrollmentState.FINISHED):
            return
        why = f"soft bounce: {bounce.status or bounce.reply_code or ''} {bounce.reason}".strip()
        referenced = set(self.parsed.classification.in_reply_to) | set(self.parsed.original_ids)
        current = {outbound.message_id, outbound.provider_message_id}
        about_earlier_attempt = self.match.by == "references" and not (referenced & current)
        if (
            outbound.state != OutboundState.SENT
            or about_earlier_attempt
            or enrollment.current_step != outbound.step_position + 1
            or await MatchRepository(self.s).later_outbound(enrollment.id, outbound.step_position)
        ):
            # A report about an earlier attempt, or the cadence moved on: nothing to re-send.
            return
        policy = self.tracker.policy
        if outbound.bounce_retries >= policy.soft_bounce_retries:
            reason = f"{why}; gave up after {outbound.bounce_retries} more attempts"
            self._stop(enrollment, EnrollmentState.BOUNCED, reason)
            await self._record(
                "bounced",
                "enrollment.bounced",
                reason,
                enrollment=enrollment,
                extra={"hard": False},
            )
            self.outcome.action = "bounced"
            return
        delays = policy.soft_bounce_delays or (timedelta(days=1),)
        at = self.now + delays[min(outbound.bounce_retries, len(delays) - 1)]
        matches = MatchRepository(self.s)
        await matches.add_alias(outbound.id, outbound.message_id, self.now)
        if outbound.provider_message_id:
            await matches.add_alias(outbound.id, outbound.provider_message_id, self.now)
        new_id = make_message_id(domain_of(outbound.mail_from))
        outbound.raw = _with_new_identity(outbound.raw, new_id, at)
        outbound.message_id = new_id
        outbound.provider_message_id = None
        outbound.bounce_retries += 1
        outbound.state = OutboundState.RETRY
        outbound.next_attempt_at = at
        outbound.sent_copy_by = None
        outbound.sent_uid = outbound.sent_uidvalidity = None
        outbound.error = why
        outbound.updated_at = self.now
        enrollment.state = EnrollmentState.ACTIVE
        enrollment.current_step = outbound.step_position
        enrollment.next_due_at = at
        enrollment.paused_until = None
        enrollment.reason = (
            f"{why}; step {outbound.step_position + 1} will be sent again "
            f"{at.isoformat(timespec='minutes')} (attempt {outbound.bounce_retries + 1})"
        )
        enrollment.updated_at = self.now
        await self._record(
            "bounce_retry",
            "enrollment.retry_scheduled",
            enrollment.reason,
            enrollment=enrollment,
            extra={"retry_at": at.isoformat(), "attempt": outbound.bounce_retries + 1},
        )
        self.outcome.action = "retry"

    # -- complaint ---------------------------------------------------------------------------

    async def complaint(self) -> None:
        prospect_ids = sorted({e.prospect_id for e in self.match.enrollments})
        if not prospect_ids and self.match.outbound is not None:
            prospect = await ProspectRepository(self.s).by_email(self.match.outbound.rcpt_to)
            prospect_ids = [prospect.id] if prospect else []
        for pid in prospect_ids:
            prospect = await ProspectRepository(self.s).get(pid)
            if prospect is None:
                continue
            prospect.do_not_contact = True
            for enrollment in await MatchRepository(self.s).open_enrollments_of([pid]):
                self._stop(enrollment, EnrollmentState.OPTED_OUT, "complaint (marked as spam)")
                await self._record(
                    "opted_out",
                    "enrollment.opted_out",
                    f"{prospect.email} complained; the cadence stopped",
                    enrollment=enrollment,
                )
            await self._record(
                "complaint",
                "prospect.opted_out",
                f"{prospect.email} opted out by a complaint",
                prospect=prospect,
            )
            self.outcome.action = "opted_out"


def _with_new_identity(raw: bytes, message_id: str, date: datetime) -> bytes:
    """The same message with a new Message-ID and Date (a re-send is a new message)."""
    msg = BytesParser(policy=email_policy.SMTP).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    del msg["Message-ID"]
    del msg["Date"]
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    return to_bytes(msg)


async def processed_for(db: Database, enrollment_ids: Sequence[int]) -> list[InboundRow]:
    """Inbound messages recorded against these enrollments (for tests and the API)."""
    out: list[InboundRow] = []
    async with db.transaction() as s:
        for enrollment_id in enrollment_ids:
            out.extend(await InboundRepository(s).for_enrollment(enrollment_id))
    return out
