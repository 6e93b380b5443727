"""The sending engine: one pass decides what is due, sends it, and records what happened.

Exactly once, in four steps per message (never holding a database session across network
I/O):

1. **Prepare** (one transaction): lock the mailbox and the enrollment (``SKIP LOCKED`` on
   PostgreSQL, so several workers share the work), check the window and the pacing, render
   the step and store the outbound message in state ``sending`` with its unique Message-ID,
   a lease, and the raw bytes.  A (enrollment, step) pair has at most one outbound row: the
   database itself refuses a second.
2. **Send** over SMTP (no transaction open).
3. **Record** (one transaction): ``sent`` with the server's reply and the provider's
   Message-ID, and advance the enrollment; or bounce / retry / hold.
4. **Sent copy**: look for the Message-ID in the Sent folder; APPEND a copy only when the
   server did not file one itself, and record the APPENDUID.  Finding it first makes the
   APPEND idempotent across crashes.

If the process dies between 2 and 3 the row stays ``sending``.  When its lease expires,
recovery looks for the message in the Sent folder: found means it was sent.  Not found is
proof of nothing on a server that does not file Sent copies itself, so the message is marked
``unknown`` and the enrollment held with a reason for a person to decide: it is never
re-sent blindly.  On a server known to file copies (Gmail, Microsoft 365), not found means
not sent, and it is retried.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from cadence.engine.mailboxes import MailboxConnection, connection_for, pacing_for
from cadence.engine.scheduling import Clock, Window, add_delay, parse_holidays, zone
from cadence.engine.templates import (
    MissingVariable,
    ProspectFields,
    TemplateError,
    render,
    template_context,
)
from cadence.engine.transport import (
    Accepted,
    Ambiguous,
    LiveTransport,
    MailTransport,
    NotSent,
    Outcome,
    Rejected,
    SentCopy,
)
from cadence.mail.mime import (
    Party,
    Thread,
    build_message,
    domain_of,
    make_message_id,
    quote_text,
    reply_subject,
    to_bytes,
)
from cadence.store.db import Database
from cadence.store.models import (
    Enrollment,
    EnrollmentState,
    Mailbox,
    MailboxStatus,
    OutboundMessage,
    OutboundState,
    Step,
    StepType,
)
from cadence.store.repositories import (
    ActivityRepository,
    CadenceRepository,
    EnrollmentRepository,
    MailboxRepository,
    OutboundRepository,
)
from cadence.store.secrets import SecretBox

log = logging.getLogger("cadence.sender")

# Test hook for the exactly-once proof: exit the process right after the SMTP server accepted
# a message and before the outcome is committed, as a power cut would.
CRASH_ENV = "CADENCE_TEST_CRASH_AFTER_ACCEPT"

TransportFactory = Callable[[MailboxConnection], MailTransport]


@dataclass(frozen=True)
class SendPolicy:
    lease: timedelta = timedelta(minutes=5)  # longer than any SMTP transaction can take
    max_attempts: int = 8
    backoff: timedelta = timedelta(minutes=2)
    max_backoff: timedelta = timedelta(hours=2)
    # A server known to file Sent copies gets this long to show one before we APPEND ours.
    sent_copy_grace: timedelta = timedelta(minutes=10)
    poll: timedelta = timedelta(seconds=30)


@dataclass
class PassReport:
    sent: int = 0
    bounced: int = 0
    retried: int = 0
    held: int = 0
    deferred: int = 0
    recovered: int = 0
    unknown: int = 0
    next_wake: datetime | None = None
    events: list[str] = field(default_factory=list)

    def wake(self, at: datetime) -> None:
        if self.next_wake is None or at < self.next_wake:
            self.next_wake = at


@dataclass(frozen=True)
class Prepared:
    outbound_id: int
    enrollment_id: int
    mailbox_id: int
    message_id: str
    raw: bytes
    mail_from: str
    rcpt_to: str
    # The delay of the step after this one (business days, hours), None when it is the last.
    following: tuple[int, int] | None = None


class _Stop:
    """The mailbox cannot send now (paced, capped, locked by another worker, inactive)."""

    def __init__(self, until: datetime | None = None) -> None:
        self.until = until


def backoff_for(attempts: int, policy: SendPolicy, seed: str) -> timedelta:
    """Exponential backoff with +/-20 % jitter, deterministic for a message and attempt."""
    base = min(policy.backoff * (2 ** max(attempts - 1, 0)), policy.max_backoff)
    rng = random.Random(hashlib.sha256(f"{seed}|{attempts}".encode()).digest())
    factor: float = 0.8 + 0.4 * rng.random()
    return timedelta(seconds=base.total_seconds() * factor)


class SendingEngine:
    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        clock: Clock,
        *,
        transport_factory: TransportFactory = LiveTransport,
        policy: SendPolicy | None = None,
        worker_id: str | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.clock = clock
        self.transport_factory = transport_factory
        self.policy = policy or SendPolicy()
        self.worker_id = worker_id or f"{os.uname().nodename}:{os.getpid()}"
        self.should_stop = should_stop

    # -- the pass ----------------------------------------------------------------------------

    async def run_pass(self) -> PassReport:
        report = PassReport()
        now = self.clock()
        await self.recover(report)
        ready = await self.schedule(now, report)
        for mailbox_id, enrollment_ids in ready.items():
            if self.should_stop():
                break
            try:
                await self._send_for_mailbox(mailbox_id, enrollment_ids, report)
            except Exception:
                # One mailbox's unexpected failure must not stop the others' sending; what
                # it was doing is left in the store for recovery (never re-sent blindly).
                log.exception("sending from mailbox %s failed; continuing", mailbox_id)
                report.events.append(f"mailbox {mailbox_id}: unexpected error")
        await self.file_missing_sent_copies(report)
        report.wake(self.clock() + self.policy.poll)
        return report

    async def schedule(self, now: datetime, report: PassReport) -> dict[int, list[int]]:
        """Look at every due enrollment: those whose window is closed move to when it opens;
        the rest are returned by mailbox, oldest first."""
        ready: dict[int, list[int]] = defaultdict(list)
        async with self.db.transaction() as s:
            await EnrollmentRepository(s).wake_paused(now)
            schedules = await MailboxRepository(s).schedules()
            rows = await EnrollmentRepository(s).due(now)
            moves: list[tuple[int, datetime]] = []
            windows: dict[tuple[str | None, str | None, str | None], Window] = {}
            holidays = {m: parse_holidays(ms.holidays) for m, ms in schedules.items()}
            mailbox_zones = {m: zone(ms.timezone) for m, ms in schedules.items()}
            zones: dict[str | None, ZoneInfo] = {}
            decisions: dict[tuple[object, ...], datetime] = {}
            for row in rows:
                ms = schedules[row.mailbox_id]
                key: tuple[str | None, str | None, str | None]
                if row.window_days is None and row.window_from is None:
                    key = (ms.work_days, ms.work_from, ms.work_to)
                else:
                    key = (row.window_days, row.window_from, row.window_to)
                window = windows.get(key)
                if window is None:
                    window = windows[key] = Window.parse(*key)
                mailbox_tz = mailbox_zones[row.mailbox_id]
                if row.prospect_tz is None:
                    tz = mailbox_tz
                else:
                    tz = zones.get(row.prospect_tz) or zones.setdefault(
                        row.prospect_tz, zone(row.prospect_tz)
                    )
                # ``now`` is fixed for the pass: one answer per window, zone and mailbox.
                decision_key = (key, row.prospect_tz, row.mailbox_id)
                opens = decisions.get(decision_key)
                if opens is None:
                    opens = decisions[decision_key] = window.next_open(
                        now, tz, holidays[row.mailbox_id], mailbox_tz
                    )
                if opens > now:
                    moves.append((row.enrollment_id, opens))
                else:
                    ready[row.mailbox_id].append(row.enrollment_id)
            await EnrollmentRepository(s).reschedule_many(moves, now)
        report.deferred += len(moves)
        for _, at in moves:
            report.wake(at)
        return ready

    async def _send_for_mailbox(
        self, mailbox_id: int, enrollment_ids: list[int], report: PassReport
    ) -> None:
        transport: MailTransport | None = None
        try:
            for enrollment_id in enrollment_ids:
                if self.should_stop():
                    return
                now = self.clock()
                try:
                    prepared = await self._prepare(mailbox_id, enrollment_id, now, report)
                except IntegrityError:
                    # Another worker stored this step's message first: it is theirs.
                    continue
                if isinstance(prepared, _Stop):
                    if prepared.until is not None:
                        report.wake(prepared.until)
                    return
                if prepared is None:
                    continue
                if transport is None:
                    transport = await self._transport(mailbox_id)
                outcome = await transport.send(prepared.raw, prepared.mail_from, prepared.rcpt_to)
                if isinstance(outcome, Accepted) and os.environ.get(CRASH_ENV):
                    log.warning("test crash point reached: exiting before the commit")
                    os._exit(int(os.environ[CRASH_ENV]) or 86)
                if isinstance(outcome, Ambiguous):
                    await self._resolve(transport, prepared.outbound_id, report, outcome.error)
                    continue
                keep_going = await self._record(prepared, outcome, report)
                if isinstance(outcome, Accepted):
                    await self._file_sent_copy(transport, prepared.outbound_id, fresh=True)
                if not keep_going:
                    return
        finally:
            if transport is not None:
                await transport.close()

    async def _transport(self, mailbox_id: int) -> MailTransport:
        async with self.db.transaction() as s:
            mailbox = await MailboxRepository(s).get(mailbox_id)
            assert mailbox is not None
            connection = connection_for(mailbox, self.secrets)
        return self.transport_factory(connection)

    # -- 1. prepare --------------------------------------------------------------------------

    async def _prepare(
        self, mailbox_id: int, enrollment_id: int, now: datetime, report: PassReport
    ) -> Prepared | _Stop | None:
        async with self.db.transaction() as s:
            mailboxes = MailboxRepository(s)
            mailbox = await mailboxes.lock(mailbox_id)
            if mailbox is None or mailbox.status != MailboxStatus.ACTIVE:
                return _Stop()
            pacing = pacing_for(mailbox)
            sent_today = await mailboxes.sends_since(mailbox.id, pacing.day_start(now))
            slot = pacing.next_slot(now, mailbox.last_send_at, sent_today)
            if slot > now:
                return _Stop(slot)
            enrollment = await EnrollmentRepository(s).claim(enrollment_id, now)
            if enrollment is None:
                return None
            activity = ActivityRepository(s)
            prospect = enrollment.prospect
            steps = enrollment.cadence.steps
            if prospect.do_not_contact:
                self._set_state(enrollment, EnrollmentState.OPTED_OUT, "do not contact", now)
                return None
            if prospect.undeliverable:
                reason = f"address undeliverable: {prospect.undeliverable_reason or 'hard bounce'}"
                self._set_state(enrollment, EnrollmentState.BOUNCED, reason, now)
                return None
            if enrollment.current_step >= len(steps):
                self._set_state(enrollment, EnrollmentState.FINISHED, "all steps done", now)
                return None
            step = steps[enrollment.current_step]
            outbounds = OutboundRepository(s)
            existing = await outbounds.for_step(enrollment.id, step.position)
            if existing is not None and existing.state in (
                OutboundState.SENDING,
                OutboundState.UNKNOWN,
                OutboundState.SENT,
            ):
                # Being sent, resolved by recovery, or already sent: never a second copy.
                enrollment.next_due_at = now + self.policy.lease
                return None
            if step.type != StepType.EMAIL:
                self._hold(
                    enrollment,
                    f"step {step.position + 1} is a {step.type.replace('_', ' ')} for the rep",
                    now,
                )
                report.held += 1
                return None
            lease_until = now + self.policy.lease
            if existing is not None:  # a retry keeps its Message-ID and bytes
                outbound = existing
            else:
                try:
                    composed = await self.compose(s, mailbox, enrollment, step, now)
                except TemplateError as exc:
                    reason = exc.message
                    if isinstance(exc, MissingVariable):
                        reason = f"held: {exc.message}"
                    self._hold(enrollment, reason, now)
                    activity.log(
                        "template_hold",
                        reason,
                        at=now,
                        mailbox_id=mailbox.id,
                        enrollment_id=enrollment.id,
                        prospect_id=prospect.id,
                        data={"hint": exc.hint},
                    )
                    report.held += 1
                    return None
                if composed is None:
                    self._hold(
                        enrollment,
                        f"step {step.position + 1} replies in a thread but nothing was sent "
                        "before it, and it has no subject",
                        now,
                    )
                    report.held += 1
                    return None
                outbound = await outbounds.add(composed)
            outbound.state = OutboundState.SENDING
            outbound.claimed_by = self.worker_id
            outbound.lease_until = lease_until
            outbound.updated_at = now
            # Out of the due set while it is being sent; the record step sets the real time.
            enrollment.next_due_at = lease_until
            enrollment.updated_at = now
            mailbox.last_send_at = now  # reserves the pacing slot
            await s.flush()
            return Prepared(
                outbound_id=outbound.id,
                enrollment_id=enrollment.id,
                mailbox_id=mailbox.id,
                message_id=outbound.message_id,
                raw=outbound.raw,
                mail_from=outbound.mail_from,
                rcpt_to=outbound.rcpt_to,
                following=(
                    (
                        steps[step.position + 1].delay_business_days,
                        steps[step.position + 1].delay_hours,
                    )
                    if step.position + 1 < len(steps)
                    else None
                ),
            )

    async def compose(
        self, s: object, mailbox: Mailbox, enrollment: Enrollment, step: Step, now: datetime
    ) -> OutboundMessage | None:
        from sqlalchemy.ext.asyncio import AsyncSession

        assert isinstance(s, AsyncSession)
        prospect = enrollment.prospect
        context = template_context(
            ProspectFields(
                email=prospect.email,
                first_name=prospect.first_name,
                last_name=prospect.last_name,
                company=prospect.company,
                title=prospect.title,
                timezone=prospect.timezone,
                custom=prospect.custom_fields,
            ),
            mailbox.display_name,
            mailbox.address,
        )
        where = f"step {step.position + 1}"
        text = render(step.body, context, f"{where} body")
        html = render(step.html, context, f"{where} html", html=True) if step.html else None
        thread: Thread | None = None
        subject: str | None = None
        if step.reply_in_thread:
            previous = await OutboundRepository(s).thread_of(enrollment.id)
            if previous:
                first, last = previous[0], previous[-1]
                subject = reply_subject(first.subject)
                parent = last.provider_message_id or last.message_id
                refs = tuple((last.references or "").split())
                thread = Thread(parent, refs)
                when = format_datetime(last.sent_at or last.created_at)
                sender_name = mailbox.display_name or mailbox.address
                text = (
                    text.rstrip("\n")
                    + "\n\n"
                    + quote_text(last.text_body, f"On {when}, {sender_name} wrote:")
                )
                html = None if step.html is None else html
        if subject is None:
            if not step.subject:
                return None
            subject = render(step.subject, context, f"{where} subject")
        name = " ".join(x for x in (prospect.first_name, prospect.last_name) if x) or None
        message_id = make_message_id(domain_of(mailbox.address))
        message = build_message(
            sender=Party(mailbox.address, mailbox.display_name),
            recipient=Party(prospect.email, name),
            subject=subject,
            text=text,
            html_body=html,
            message_id=message_id,
            date=now,
            thread=thread,
        )
        return OutboundMessage(
            enrollment_id=enrollment.id,
            mailbox_id=mailbox.id,
            step_position=step.position,
            message_id=message_id,
            in_reply_to=thread.in_reply_to if thread else None,
            references=thread.references_header() if thread else None,
            subject=str(message["Subject"]),
            text_body=text,
            mail_from=mailbox.address,
            rcpt_to=prospect.email,
            raw=to_bytes(message),
            state=OutboundState.SENDING,
            created_at=now,
            updated_at=now,
        )

    # -- 3. record ---------------------------------------------------------------------------

    async def _record(self, prepared: Prepared, outcome: Outcome, report: PassReport) -> bool:
        """Commit what the server said.  Returns False when the mailbox should stop for now."""
        now = self.clock()
        async with self.db.transaction() as s:
            outbound = await OutboundRepository(s).get(prepared.outbound_id)
            enrollment = await EnrollmentRepository(s).claim_any(prepared.enrollment_id)
            mailbox = await MailboxRepository(s).get(prepared.mailbox_id)
            assert outbound is not None and enrollment is not None and mailbox is not None
            activity = ActivityRepository(s)

            def note(kind: str, message: str, data: dict[str, str] | None = None) -> None:
                activity.log(
                    kind,
                    message,
                    at=now,
                    mailbox_id=mailbox.id,
                    enrollment_id=enrollment.id,
                    prospect_id=enrollment.prospect_id,
                    data=data,
                )

            outbound.updated_at = now
            outbound.lease_until = None
            if isinstance(outcome, Accepted):
                result = outcome.result
                self._mark_sent(outbound, now, result.code, result.message)
                if result.provider_message_id and result.provider_message_id != outbound.message_id:
                    outbound.provider_message_id = result.provider_message_id
                await self._advance(enrollment, mailbox, now, prepared.following)
                note(
                    "sent",
                    f"step {outbound.step_position + 1} sent to {outbound.rcpt_to}",
                    {"message_id": outbound.message_id, "reply": result.message},
                )
                report.sent += 1
                return True
            if isinstance(outcome, Rejected):
                err = outcome.error
                reply = err.server_reply or err.message
                outbound.smtp_code = err.smtp_code
                outbound.smtp_reply = reply
                outbound.error = err.message
                if err.permanent:
                    rcpt = err.detail.get("stage") == "RCPT TO"
                    outbound.state = OutboundState.BOUNCED if rcpt else OutboundState.FAILED
                    state = EnrollmentState.BOUNCED if rcpt else EnrollmentState.FAILED
                    self._set_state(enrollment, state, f"refused by the server: {reply}", now)
                    note("bounced" if rcpt else "failed", reply)
                    report.bounced += 1
                    return True
                self._retry(outbound, enrollment, now, reply)
                note("retry", reply)
                report.retried += 1
                return True
            assert isinstance(outcome, NotSent)
            failure = outcome.error
            outbound.state = OutboundState.RETRY
            outbound.error = failure.message
            if outcome.auth:
                # Stop at once: retrying a bad password only gets the account locked.
                mailbox.status = MailboxStatus.NEEDS_ATTENTION
                mailbox.status_reason = f"{failure.message} — {failure.hint}".strip(" —")
                outbound.next_attempt_at = now
                enrollment.next_due_at = now
                enrollment.reason = "waiting: the mailbox needs attention"
                note("mailbox_needs_attention", failure.message)
            else:
                self._retry(outbound, enrollment, now, failure.message)
                note("retry", failure.message)
                report.retried += 1
            return False

    def _mark_sent(self, outbound: OutboundMessage, now: datetime, code: int, reply: str) -> None:
        outbound.state = OutboundState.SENT
        outbound.sent_at = now
        outbound.smtp_code = code
        outbound.smtp_reply = reply
        outbound.attempts += 1
        outbound.error = None

    def _retry(
        self, outbound: OutboundMessage, enrollment: Enrollment, now: datetime, why: str
    ) -> None:
        outbound.attempts += 1
        if outbound.attempts >= self.policy.max_attempts:
            outbound.state = OutboundState.FAILED
            self._set_state(
                enrollment,
                EnrollmentState.FAILED,
                f"gave up after {outbound.attempts} attempts: {why}",
                now,
            )
            return
        outbound.state = OutboundState.RETRY
        at = now + backoff_for(outbound.attempts, self.policy, outbound.message_id)
        outbound.next_attempt_at = at
        enrollment.next_due_at = at
        enrollment.reason = f"retrying at {at.isoformat(timespec='seconds')}: {why}"
        enrollment.updated_at = now

    _UNKNOWN: tuple[int, int] = (-1, -1)

    async def _advance(
        self,
        enrollment: Enrollment,
        mailbox: Mailbox,
        now: datetime,
        following: tuple[int, int] | None = _UNKNOWN,
    ) -> None:
        """The step was sent: on to the next one (``following`` is its delay, when known)."""
        if following == self._UNKNOWN:
            from sqlalchemy.ext.asyncio import async_object_session

            session = async_object_session(enrollment)
            assert session is not None
            steps = await CadenceRepository(session).steps(enrollment.cadence_id)
            nxt = enrollment.current_step + 1
            following = (
                (steps[nxt].delay_business_days, steps[nxt].delay_hours)
                if nxt < len(steps)
                else None
            )
        sent_position = enrollment.current_step
        enrollment.current_step += 1
        enrollment.attempts = 0
        enrollment.updated_at = now
        if enrollment.state not in (EnrollmentState.ACTIVE, EnrollmentState.PAUSED):
            # A reply, bounce or opt-out was recorded while this step was on its way: the
            # step went out, but the enrollment keeps the state that answer gave it.
            return
        if following is None:
            enrollment.state = EnrollmentState.FINISHED
            enrollment.next_due_at = None
            enrollment.reason = f"step {sent_position + 1} sent; cadence finished"
            return
        business_days, hours = following
        enrollment.next_due_at = add_delay(
            now,
            business_days=business_days,
            hours=hours,
            tz=zone(mailbox.timezone),
            holidays=parse_holidays(mailbox.holidays),
        )
        enrollment.reason = f"step {sent_position + 1} sent"

    @staticmethod
    def _set_state(enrollment: Enrollment, state: str, reason: str, now: datetime) -> None:
        enrollment.state = state
        enrollment.reason = reason
        enrollment.next_due_at = None
        enrollment.updated_at = now

    def _hold(self, enrollment: Enrollment, reason: str, now: datetime) -> None:
        self._set_state(enrollment, EnrollmentState.PAUSED, reason, now)

    # -- recovery ----------------------------------------------------------------------------

    async def recover(self, report: PassReport) -> None:
        """Resolve messages left ``sending`` by a worker that died (its lease ran out)."""
        now = self.clock()
        async with self.db.transaction() as s:
            stale = await OutboundRepository(s).expired_sending(now)
        by_mailbox: dict[int, list[int]] = defaultdict(list)
        for outbound_id in stale:
            async with self.db.transaction() as s:
                outbound = await OutboundRepository(s).get(outbound_id)
                if outbound is not None:
                    by_mailbox[outbound.mailbox_id].append(outbound_id)
        for mailbox_id, outbound_ids in by_mailbox.items():
            transport = await self._transport(mailbox_id)
            try:
                for outbound_id in outbound_ids:
                    await self._resolve(transport, outbound_id, report, None)
            finally:
                await transport.close()

    async def _resolve(
        self,
        transport: MailTransport,
        outbound_id: int,
        report: PassReport,
        error: BaseException | None,
    ) -> None:
        """Did the server accept this message?  Ask the Sent folder, never guess."""
        async with self.db.transaction() as s:
            outbound = await OutboundRepository(s).get(outbound_id)
            assert outbound is not None
            ids = [outbound.message_id, outbound.provider_message_id or ""]
            mailbox = await MailboxRepository(s).get(outbound.mailbox_id)
            assert mailbox is not None
            files_sent = mailbox.server_files_sent
        try:
            copy = await transport.find_sent(ids)
        except Exception as exc:  # IMAP down too: leave it for the next pass
            log.warning("cannot look in the Sent folder for %s: %s", ids[0], exc)
            return
        now = self.clock()
        why = (
            f"the connection broke during sending ({error})"
            if error
            else ("the worker stopped while sending")
        )
        async with self.db.transaction() as s:
            outbound = await OutboundRepository(s).lock(outbound_id)
            if outbound is None or outbound.state != OutboundState.SENDING:
                return
            enrollment = await EnrollmentRepository(s).claim_any(outbound.enrollment_id or 0)
            mailbox = await MailboxRepository(s).get(outbound.mailbox_id)
            assert mailbox is not None
            activity = ActivityRepository(s)
            outbound.lease_until = None
            outbound.updated_at = now
            if copy is not None:
                self._mark_sent(outbound, now, 250, f"recovered: found in {copy.folder}")
                self._record_copy(outbound, copy, "server")
                if enrollment is not None and enrollment.current_step == outbound.step_position:
                    await self._advance(enrollment, mailbox, now)
                activity.log(
                    "recovered_sent",
                    f"{why}; the message was found in {copy.folder}: recorded as sent",
                    at=now,
                    mailbox_id=mailbox.id,
                    enrollment_id=outbound.enrollment_id,
                )
                report.recovered += 1
                return
            if files_sent and enrollment is not None:
                # This server files every accepted message in Sent: absent means not sent.
                self._retry(outbound, enrollment, now, f"{why}; not in the Sent folder")
                report.retried += 1
                return
            outbound.state = OutboundState.UNKNOWN
            outbound.error = why
            reason = (
                f"held: {why} and the server may have accepted step "
                f"{outbound.step_position + 1} ({outbound.message_id}); it is not in the Sent "
                "folder and this server does not file copies itself, so Cadence will not send "
                "it again on its own. Check the Sent folder, then resume or finish the "
                "enrollment."
            )
            if enrollment is not None:
                self._hold(enrollment, reason, now)
            activity.log(
                "unknown_outcome",
                reason,
                at=now,
                mailbox_id=mailbox.id,
                enrollment_id=outbound.enrollment_id,
            )
            report.unknown += 1

    # -- 4. the Sent copy --------------------------------------------------------------------

    @staticmethod
    def _record_copy(outbound: OutboundMessage, copy: SentCopy, by: str) -> None:
        outbound.sent_copy_by = by
        outbound.sent_uidvalidity = copy.uidvalidity
        outbound.sent_uid = copy.uid

    async def _file_sent_copy(
        self, transport: MailTransport, outbound_id: int, *, fresh: bool
    ) -> None:
        async with self.db.transaction() as s:
            outbound = await OutboundRepository(s).get(outbound_id)
            assert outbound is not None
            if outbound.state != OutboundState.SENT or outbound.sent_copy_by is not None:
                return
            mailbox = await MailboxRepository(s).get(outbound.mailbox_id)
            assert mailbox is not None
            ids = [outbound.message_id, outbound.provider_message_id or ""]
            raw = outbound.raw
            files_sent = mailbox.server_files_sent
            sent_at = outbound.sent_at or outbound.created_at
        try:
            copy = await transport.find_sent(ids)
            by = "server"
            if copy is None:
                if files_sent and self.clock() < sent_at + self.policy.sent_copy_grace:
                    return  # the server files copies, sometimes late: look again later
                copy = await transport.append_sent(raw)
                by = "cadence"
        except Exception as exc:
            log.warning("could not file the Sent copy of %s: %s", ids[0], exc)
            return
        async with self.db.transaction() as s:
            outbound = await OutboundRepository(s).get(outbound_id)
            mailbox = await MailboxRepository(s).get(outbound.mailbox_id) if outbound else None
            assert outbound is not None and mailbox is not None
            self._record_copy(outbound, copy, by)
            # Learn from a fresh send only: then a copy we find cannot be one we appended.
            if fresh and mailbox.server_files_sent is None:
                mailbox.server_files_sent = by == "server"

    async def file_missing_sent_copies(self, report: PassReport) -> None:
        async with self.db.transaction() as s:
            mailbox_ids = await MailboxRepository(s).active_ids()
            pending = {m: await OutboundRepository(s).missing_sent_copy(m) for m in mailbox_ids}
        for mailbox_id, outbound_ids in pending.items():
            if not outbound_ids:
                continue
            transport = await self._transport(mailbox_id)
            try:
                for outbound_id in outbound_ids:
                    await self._file_sent_copy(transport, outbound_id, fresh=False)
            finally:
                await transport.close()
