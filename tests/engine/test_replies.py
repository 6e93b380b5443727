"""The reply tracker in-process, on SQLite and PostgreSQL: each way of matching an inbound
message to what we sent, each action, dedupe, quarantine, and webhook events.

The store is filled directly (a mailbox, a two-step cadence, a prospect who received step 1);
the messages are written here.  The watcher and the real servers are in test_replies_e2e.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cadence.engine.events import WebhookDispatcher, add_webhook
from cadence.engine.mailbox_sync import InboundMessage
from cadence.engine.replies import Outcome, ReplyPolicy, ReplyTracker, resume_at
from cadence.engine.webhooks import SIGNATURE_HEADER, verify
from cadence.mail.classify import MalformedMessageError
from cadence.mail.mime import Party, build_message, parse_thread_index, thread_index
from cadence.mail.mime import to_bytes as mime_bytes
from cadence.store.db import Database
from cadence.store.models import (
    Activity,
    Cadence,
    Enrollment,
    EnrollmentState,
    Mailbox,
    OutboundMessage,
    OutboundState,
    Prospect,
    Step,
)
from cadence.store.repositories import EnrollmentRepository
from cadence.store.secrets import SecretBox
from cadence.store.tracking_models import (
    DeliveryStatus,
    OutboundAlias,
    QuarantinedMessage,
    WebhookDelivery,
)
from cadence.store.tracking_models import (
    InboundMessage as InboundRow,
)
from cadence.testing.http_server import HttpTestServer, Reply

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # Tuesday, step 1 sent
REP = "rep@cadence.test"
PAT = "pat@prospect.example"
_uids = itertools.count(1)

# -- messages written for these tests ----------------------------------------------------------


def reply(
    sender: str = PAT,
    *,
    in_reply_to: str | None = None,
    references: str | None = None,
    thread_index_value: str | None = None,
    n: int = 1,
    body: str = "Sounds good, let's talk on Thursday.",
) -> bytes:
    lines = [
        f"From: Pat Jones <{sender}>",
        f"To: {REP}",
        "Subject: Re: Quick question",
        "Date: Tue, 24 Nov 2026 11:00:00 +0000",
        f"Message-ID: <reply-{n}-{sender}>",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(f"References: {references}")
    if thread_index_value:
        lines.append(f"Thread-Index: {thread_index_value}")
    lines += ["Content-Type: text/plain; charset=utf-8", "", body, "", "> Hi Pat", ""]
    return "\r\n".join(lines).encode()


def out_of_office(in_reply_to: str, text: str, n: int = 1, sender: str = PAT) -> bytes:
    return (
        f"From: Pat Jones <{sender}>\r\nTo: {REP}\r\nSubject: Automatic reply: Quick question\r\n"
        "Date: Tue, 24 Nov 2026 10:01:00 +0000\r\n"
        f"Message-ID: <ooo-{n}-{sender}>\r\nIn-Reply-To: {in_reply_to}\r\n"
        "Auto-Submitted: auto-replied\r\nX-MS-Exchange-Inbox-Rules-Loop: pat@prospect.example\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


def dsn(
    original: str,
    rcpt: str,
    status: str,
    diag: str,
    n: int = 1,
    action: str = "failed",
) -> bytes:
    """An RFC 3464 delivery status notification returning our message."""
    return f"""From: MAILER-DAEMON@mx.cadence.test (Mail Delivery System)
To: {REP}
Subject: Undelivered Mail Returned to Sender
Date: Tue, 24 Nov 2026 10:05:00 +0000
Message-ID: <dsn-{n}-{status}@mx.cadence.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b{n}"

--b{n}
Content-Type: text/plain

This is the mail system at host mx.cadence.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{rcpt}>: {diag}

--b{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.cadence.test

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diag}

--b{n}
Content-Type: message/rfc822

From: {REP}
To: {rcpt}
Subject: Quick question
Message-ID: {original}

Hi
--b{n}--
""".replace("\n", "\r\n").encode()


def hard_bounce(original: str, rcpt: str = PAT, n: int = 1) -> bytes:
    diag = f"550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table"
    return dsn(original, rcpt, "5.1.1", diag, n)


def soft_bounce(original: str, rcpt: str = PAT, n: int = 1) -> bytes:
    return dsn(original, rcpt, "4.2.2", f"452 4.2.2 <{rcpt}>: Mailbox full, quota exceeded", n)


def complaint(original: str, rcpt: str = PAT) -> bytes:
    return f"""From: <staff@feedback.mailbox.example>
To: <{REP}>
Subject: Abuse report
Date: Tue, 24 Nov 2026 12:00:00 +0000
Message-ID: <arf-1@feedback.mailbox.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: text/plain

This is an email abuse report for an email message received from IP 192.0.2.1.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Rcpt-To: <{rcpt}>

--arf
Content-Type: message/rfc822

From: {REP}
To: {rcpt}
Subject: Quick question
Message-ID: {original}

Hi
--arf--
""".replace("\n", "\r\n").encode()


def fetched(raw: bytes, mailbox_id: int, folder: str = "INBOX") -> InboundMessage:
    return InboundMessage(mailbox_id, folder, next(_uids), 7, raw, len(raw), False)


# -- the world ---------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    db: Database
    clock: Clock
    mailbox_id: int
    cadence_id: int
    step1_id: str  # our Message-ID of step 1 to Pat
    outbound_id: int
    enrollment_id: int
    prospect_id: int

    def tracker(self, **policy: object) -> ReplyTracker:
        return ReplyTracker(self.db, self.clock, ReplyPolicy(**policy))  # type: ignore[arg-type]

    async def handle(self, raw: bytes, **policy: object) -> Outcome:
        return await self.tracker(**policy).handle(fetched(raw, self.mailbox_id))

    async def enrollment(self, enrollment_id: int | None = None) -> Enrollment:
        async with self.db.transaction() as s:
            row = await s.get(Enrollment, enrollment_id or self.enrollment_id)
            assert row is not None
            return row

    async def prospect(self, prospect_id: int | None = None) -> Prospect:
        async with self.db.transaction() as s:
            row = await s.get(Prospect, prospect_id or self.prospect_id)
            assert row is not None
            return row

    async def outbound(self) -> OutboundMessage:
        async with self.db.transaction() as s:
            row = await s.get(OutboundMessage, self.outbound_id)
            assert row is not None
            return row

    async def inbound(self) -> list[InboundRow]:
        async with self.db.transaction() as s:
            return list(await s.scalars(select(InboundRow).order_by(InboundRow.id)))

    async def activities(self) -> list[Activity]:
        async with self.db.transaction() as s:
            return list(await s.scalars(select(Activity).order_by(Activity.id)))

    async def second_cadence(self, *, stop_others: bool = False) -> int:
        """Pat is also in another cadence (from the same mailbox); returns that enrollment."""
        async with self.db.transaction() as s:
            other = Cadence(name="webinar", steps=[Step(position=0, subject="Hi", body="x")])
            s.add(other)
            await s.flush()
            first = await s.get(Cadence, self.cadence_id)
            assert first is not None
            first.stop_others_on_reply = stop_others
            e = Enrollment(
                prospect_id=self.prospect_id, cadence_id=other.id, mailbox_id=self.mailbox_id,
                state=EnrollmentState.ACTIVE, next_due_at=T0 + timedelta(days=1),
            )  # fmt: skip
            s.add(e)
            await s.flush()
            return e.id


async def make_world(
    db: Database, *, fallback: str = "address", provider_id: str | None = None
) -> World:
    clock = Clock(T0 + timedelta(hours=1))
    async with db.transaction() as s:
        mailbox = Mailbox(
            address=REP, username=REP, secret=b"-", imap_host="localhost", smtp_host="localhost",
            timezone="Europe/Paris", holidays=["2026-12-08"], reply_fallback=fallback,
        )  # fmt: skip
        cadence = Cadence(
            name="intro",
            steps=[
                Step(position=0, subject="Quick question", body="Hi Pat"),
                Step(position=1, delay_business_days=2, reply_in_thread=True, body="Bump"),
            ],
        )
        prospect = Prospect(email=PAT, first_name="Pat", last_name="Jones")
        s.add_all([mailbox, cadence, prospect])
        await s.flush()
        enrollment = Enrollment(
            prospect_id=prospect.id, cadence_id=cadence.id, mailbox_id=mailbox.id,
            state=EnrollmentState.ACTIVE, current_step=1, next_due_at=T0 + timedelta(days=2),
            reason="step 1 sent",
        )  # fmt: skip
        s.add(enrollment)
        await s.flush()
        message_id = f"<step1-{enrollment.id}.cadence@cadence.test>"
        raw = mime_bytes(
            build_message(
                sender=Party(REP, "Rita Rep"), recipient=Party(PAT, "Pat Jones"),
                subject="Quick question", text="Hi Pat", message_id=message_id, date=T0,
            )
        )  # fmt: skip
        outbound = OutboundMessage(
            enrollment_id=enrollment.id, mailbox_id=mailbox.id, step_position=0,
            message_id=message_id, provider_message_id=provider_id, subject="Quick question",
            text_body="Hi Pat", mail_from=REP, rcpt_to=PAT, raw=raw, state=OutboundState.SENT,
            sent_at=T0, attempts=1, sent_copy_by="cadence",
        )  # fmt: skip
        s.add(outbound)
        await s.flush()
        return World(
            db, clock, mailbox.id, cadence.id, message_id, outbound.id, enrollment.id, prospect.id
        )


@pytest.fixture
async def world(db: Database) -> World:
    return await make_world(db)


# -- matching ----------------------------------------------------------------------------------


async def test_reply_matched_by_in_reply_to_stops_the_enrollment(world: World) -> None:
    outcome = await world.handle(reply(in_reply_to=world.step1_id))
    e = await world.enrollment()
    assert e.state == EnrollmentState.REPLIED and e.next_due_at is None
    assert "replied" in (e.reason or "")
    [row] = await world.inbound()
    assert (row.kind, row.matched_by, row.action) == ("reply", "references", "replied")
    assert row.enrollment_id == world.enrollment_id and row.outbound_id == world.outbound_id
    assert row.reply_text == "Sounds good, let's talk on Thursday."
    activity = [a for a in await world.activities() if a.kind == "replied"]
    assert len(activity) == 1 and activity[0].data["inbound_id"] == row.id
    assert activity[0].enrollment_id == world.enrollment_id
    assert outcome.events == ["enrollment.replied"]


async def test_reply_matched_by_the_providers_rewritten_id_in_references(db: Database) -> None:
    world = await make_world(db, provider_id="<AM0PR01MB1234@eurprd01.prod.outlook.com>")
    raw = reply(references="<unrelated@x.example> <AM0PR01MB1234@eurprd01.prod.outlook.com>")
    await world.handle(raw)
    assert (await world.enrollment()).state == EnrollmentState.REPLIED
    assert (await world.inbound())[0].matched_by == "references"


async def test_reply_matched_by_outlooks_thread_index_alone(db: Database) -> None:
    world = await make_world(db, fallback="off")
    sent = await world.outbound()
    # Our message carries a Thread-Index whose GUID the store recorded.
    from email import message_from_bytes

    header = message_from_bytes(sent.raw)["Thread-Index"]
    assert parse_thread_index(header) == sent.thread_guid is not None
    # Outlook's answer keeps the header block and appends a child block; no References.
    answer = thread_index(world.step1_id, T0, replies=1)
    assert parse_thread_index(answer) == sent.thread_guid
    await world.handle(reply(sender="pat.private@elsewhere.example", thread_index_value=answer))
    assert (await world.enrollment()).state == EnrollmentState.REPLIED
    assert (await world.inbound())[0].matched_by == "thread_index"


async def test_fallback_by_address_and_its_off_setting(db: Database) -> None:
    world = await make_world(db, fallback="address")
    await world.handle(reply(n=1))  # no In-Reply-To, no References: a fresh email from Pat
    assert (await world.enrollment()).state == EnrollmentState.REPLIED
    assert (await world.inbound())[0].matched_by == "address"

    off = await make_world_second_mailbox(db, fallback="off")
    await off.handle(reply(sender="sam@other.example", n=2))
    assert (await off.enrollment()).state == EnrollmentState.ACTIVE
    assert [r.action for r in await off.inbound()][-1] == "recorded"


async def make_world_second_mailbox(db: Database, fallback: str) -> World:
    """A second rep mailbox writing to sam@other.example (for settings tests)."""
    async with db.transaction() as s:
        mailbox = Mailbox(
            address="rep2@cadence.test", username="rep2", secret=b"-", imap_host="localhost",
            smtp_host="localhost", reply_fallback=fallback,
        )  # fmt: skip
        cadence = Cadence(name=f"c-{fallback}", steps=[Step(position=0, subject="S", body="b")])
        prospect = Prospect(email="sam@other.example")
        s.add_all([mailbox, cadence, prospect])
        await s.flush()
        e = Enrollment(
            prospect_id=prospect.id, cadence_id=cadence.id, mailbox_id=mailbox.id,
            state=EnrollmentState.ACTIVE, current_step=1, next_due_at=T0 + timedelta(days=2),
        )  # fmt: skip
        s.add(e)
        await s.flush()
        o = OutboundMessage(
            enrollment_id=e.id, mailbox_id=mailbox.id, step_position=0,
            message_id=f"<s-{e.id}@cadence.test>", mail_from=mailbox.address,
            rcpt_to=prospect.email, raw=b"x", state=OutboundState.SENT, sent_at=T0,
        )  # fmt: skip
        s.add(o)
        await s.flush()
        return World(db, Clock(T0), mailbox.id, cadence.id, o.message_id, o.id, e.id, prospect.id)


async def test_fallback_by_domain_counts_a_colleague_but_never_a_freemail_domain(
    db: Database,
) -> None:
    world = await make_world(db, fallback="domain")
    await world.handle(reply(sender="webmaster@gmail.com", n=1))
    assert (await world.enrollment()).state == EnrollmentState.ACTIVE
    await world.handle(reply(sender="boss@prospect.example", n=2))
    e = await world.enrollment()
    assert e.state == EnrollmentState.REPLIED and "boss@prospect.example" in (e.reason or "")
    assert [r.matched_by for r in await world.inbound()] == [None, "domain"]


async def test_a_message_seen_twice_acts_once(world: World) -> None:
    raw = reply(in_reply_to=world.step1_id)
    first = await world.handle(raw)
    again = await world.handle(raw)  # a UIDVALIDITY resync or a restart before the checkpoint
    assert first.action == "replied" and again.action == "duplicate"
    assert len(await world.inbound()) == 1
    assert len([a for a in await world.activities() if a.kind == "replied"]) == 1


async def test_our_own_message_and_the_reps_own_mail_are_not_replies(world: World) -> None:
    outbound = await world.outbound()
    await world.handle(outbound.raw)  # a copy of what we sent, filed in the inbox
    await world.handle(reply(sender=REP, n=3))
    assert (await world.enrollment()).state == EnrollmentState.ACTIVE
    assert [r.action for r in await world.inbound()] == ["ignored", "ignored"]


# -- actions -----------------------------------------------------------------------------------


async def test_reply_leaves_the_prospects_other_cadences_alone_by_default(world: World) -> None:
    other = await world.second_cadence(stop_others=False)
    await world.handle(reply(in_reply_to=world.step1_id))
    assert (await world.enrollment()).state == EnrollmentState.REPLIED
    assert (await world.enrollment(other)).state == EnrollmentState.ACTIVE


async def test_reply_stops_the_prospects_other_cadences_when_the_cadence_says_so(
    world: World,
) -> None:
    other = await world.second_cadence(stop_others=True)
    await world.handle(reply(in_reply_to=world.step1_id))
    stopped = await world.enrollment(other)
    assert stopped.state == EnrollmentState.REPLIED
    assert "another cadence" in (stopped.reason or "")
    assert len([a for a in await world.activities() if a.kind == "replied"]) == 2


async def test_out_of_office_pauses_until_the_business_day_after_the_return_date_then_resumes(
    world: World,
) -> None:
    # Back Monday 7 December; the 8th is the mailbox's holiday: resume Wednesday the 9th at
    # the start of the rep's working day (09:00 Europe/Paris = 08:00 UTC).
    text = "I am out of the office and will be back on Monday 7 December. Limited access."
    outcome = await world.handle(out_of_office(world.step1_id, text))
    assert outcome.action == "paused"
    e = await world.enrollment()
    assert e.state == EnrollmentState.PAUSED and e.current_step == 1
    assert e.paused_until == datetime(2026, 12, 9, 8, 0, tzinfo=UTC)
    [row] = await world.inbound()
    assert row.return_date == date(2026, 12, 7)
    # The scheduler wakes it then, at the same step.
    async with world.db.transaction() as s:
        assert (
            await EnrollmentRepository(s).wake_paused(datetime(2026, 12, 9, 7, 59, tzinfo=UTC)) == 0
        )
        assert (
            await EnrollmentRepository(s).wake_paused(datetime(2026, 12, 9, 8, 0, tzinfo=UTC)) == 1
        )
    e = await world.enrollment()
    assert e.state == EnrollmentState.ACTIVE and e.current_step == 1
    assert e.next_due_at == datetime(2026, 12, 9, 8, 0, tzinfo=UTC)


async def test_out_of_office_without_a_date_pauses_a_set_number_of_business_days(
    world: World,
) -> None:
    await world.handle(
        out_of_office(world.step1_id, "Thank you for your message. I am currently away."),
        ooo_business_days=3,
    )
    e = await world.enrollment()
    # Tuesday 24 November + 3 business days = Friday 27th, 09:00 Paris (step 2 was due on
    # Thursday: it waits until the person is back).
    assert e.state == EnrollmentState.PAUSED
    assert e.paused_until == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


async def test_out_of_office_never_brings_a_later_step_forward(world: World) -> None:
    async with world.db.transaction() as s:
        e = await s.get(Enrollment, world.enrollment_id)
        assert e is not None
        e.next_due_at = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)
    await world.handle(out_of_office(world.step1_id, "Out of office, back on 30 November."))
    assert (await world.enrollment()).paused_until == datetime(2026, 12, 20, 9, 0, tzinfo=UTC)


def test_resume_at_skips_weekends_and_holidays() -> None:
    mailbox = Mailbox(timezone="America/New_York", holidays=["2026-12-25"], work_from="08:30")
    now = datetime(2026, 12, 21, 15, 0, tzinfo=UTC)
    # Back Thursday the 24th; the 25th is a holiday, then a weekend: Monday the 28th, 08:30 EST.
    assert resume_at(mailbox, now, date(2026, 12, 24), ReplyPolicy()) == datetime(
        2026, 12, 28, 13, 30, tzinfo=UTC
    )
    # A return date in the past or absurdly far: treated as "soon".
    assert resume_at(mailbox, now, date(2020, 1, 1), ReplyPolicy()) == datetime(
        2026, 12, 22, 13, 30, tzinfo=UTC
    )


async def test_hard_bounce_marks_the_prospect_and_stops_all_its_enrollments(
    world: World,
) -> None:
    other = await world.second_cadence()
    outcome = await world.handle(hard_bounce(world.step1_id))
    assert outcome.action == "bounced"
    prospect = await world.prospect()
    assert prospect.undeliverable and "5.1.1" in (prospect.undeliverable_reason or "")
    assert "userunknown" in (prospect.undeliverable_reason or "")
    for enrollment_id in (world.enrollment_id, other):
        e = await world.enrollment(enrollment_id)
        assert e.state == EnrollmentState.BOUNCED and e.next_due_at is None
    [row] = await world.inbound()
    assert row.matched_by == "references" and row.bounce["bounces"][0]["hard"] is True
    kinds = [a.kind for a in await world.activities()]
    assert kinds.count("bounced") == 2 and kinds.count("undeliverable") == 1


async def test_hard_bounce_without_our_message_id_is_matched_by_recipient(world: World) -> None:
    await world.handle(hard_bounce("<lost-in-transit@mx.example>"))
    assert (await world.prospect()).undeliverable
    assert (await world.inbound())[0].matched_by == "recipient"


async def test_hard_bounce_of_the_address_a_prospect_forwards_to_marks_the_prospect(
    world: World,
) -> None:
    await world.handle(hard_bounce(world.step1_id, rcpt="pat.old@elsewhere.example"))
    assert (await world.prospect()).undeliverable
    assert (await world.enrollment()).state == EnrollmentState.BOUNCED


async def test_soft_bounce_resends_the_step_with_a_new_message_id_then_gives_up(
    world: World,
) -> None:
    outcome = await world.handle(soft_bounce(world.step1_id), soft_bounce_retries=2)
    assert outcome.action == "retry"
    out = await world.outbound()
    e = await world.enrollment()
    assert out.state == OutboundState.RETRY and out.bounce_retries == 1
    assert out.message_id != world.step1_id and out.sent_copy_by is None
    assert f"Message-ID: {out.message_id}".encode() in out.raw
    assert world.step1_id.encode() not in out.raw
    assert e.state == EnrollmentState.ACTIVE and e.current_step == 0
    assert e.next_due_at == world.clock() + timedelta(days=1)
    assert not (await world.prospect()).undeliverable
    async with world.db.transaction() as s:
        aliases = list(await s.scalars(select(OutboundAlias.message_id)))
    assert aliases == [world.step1_id]

    # A second report about the first attempt changes nothing.
    await world.handle(soft_bounce(world.step1_id, n=2), soft_bounce_retries=2)
    assert (await world.outbound()).bounce_retries == 1

    async def resent_and_bounced(n: int) -> Outcome:
        async with world.db.transaction() as s:
            o = await s.get(OutboundMessage, world.outbound_id)
            en = await s.get(Enrollment, world.enrollment_id)
            assert o is not None and en is not None
            o.state = OutboundState.SENT  # what the sender does when it re-sends it
            en.current_step, en.next_due_at = 1, T0 + timedelta(days=5)
            current = o.message_id
        return await world.handle(soft_bounce(current, n=n), soft_bounce_retries=2)

    assert (await resent_and_bounced(3)).action == "retry"
    assert (await world.outbound()).bounce_retries == 2
    assert (await resent_and_bounced(4)).action == "bounced"
    e = await world.enrollment()
    assert e.state == EnrollmentState.BOUNCED and "gave up" in (e.reason or "")
    assert not (await world.prospect()).undeliverable  # a full mailbox is not a dead address


async def test_a_late_reply_to_a_resent_steps_old_message_id_still_matches(world: World) -> None:
    await world.handle(soft_bounce(world.step1_id))
    await world.handle(reply(in_reply_to=world.step1_id))
    assert (await world.enrollment()).state == EnrollmentState.REPLIED


async def test_complaint_opts_the_prospect_out(world: World) -> None:
    other = await world.second_cadence()
    outcome = await world.handle(complaint(world.step1_id))
    assert outcome.action == "opted_out"
    assert (await world.prospect()).do_not_contact
    for enrollment_id in (world.enrollment_id, other):
        assert (await world.enrollment(enrollment_id)).state == EnrollmentState.OPTED_OUT


async def test_delivery_report_and_other_mail_are_recorded_only(world: World) -> None:
    delayed = dsn(world.step1_id, PAT, "4.4.1", "451 4.4.1 connection timed out", action="delayed")
    await world.handle(delayed)
    newsletter = (
        b"From: news@vendor.example\r\nTo: rep@cadence.test\r\nSubject: Our news\r\n"
        b"Message-ID: <news-1@vendor.example>\r\nPrecedence: bulk\r\n"
        b"List-Unsubscribe: <mailto:u@vendor.example>\r\n\r\nHello list\r\n"
    )
    await world.handle(newsletter)
    assert (await world.enrollment()).state == EnrollmentState.ACTIVE
    rows = await world.inbound()
    assert [(r.kind, r.action) for r in rows] == [
        ("delivery_report", "recorded"),
        ("other", "recorded"),
    ]


async def test_a_reply_after_the_cadence_finished_is_recorded_without_change(
    world: World,
) -> None:
    async with world.db.transaction() as s:
        e = await s.get(Enrollment, world.enrollment_id)
        assert e is not None
        e.state = EnrollmentState.FINISHED
    await world.handle(reply(in_reply_to=world.step1_id))
    assert (await world.enrollment()).state == EnrollmentState.FINISHED
    assert (await world.inbound())[0].action == "recorded"


# -- hostile input -----------------------------------------------------------------------------


async def test_quarantine_keeps_the_message_and_retry_processes_it(world: World) -> None:
    tracker = world.tracker()
    broken = fetched(b"\x00\x01 this is not a message", world.mailbox_id)
    with pytest.raises(Exception) as caught:
        await tracker.handle(broken)
    bad_id = await tracker.quarantine(broken, caught.value)
    # A good message that failed for a passing reason (the database was down, say).
    good = fetched(reply(in_reply_to=world.step1_id), world.mailbox_id)
    good_id = await tracker.quarantine(good, ConnectionError("database unavailable"))
    async with world.db.transaction() as s:
        rows = list(await s.scalars(select(QuarantinedMessage).order_by(QuarantinedMessage.id)))
    assert [(r.error_code, r.resolved) for r in rows] == [
        ("malformed_message", False),
        ("ConnectionError", False),
    ]
    assert rows[0].raw == broken.raw and rows[0].folder == "INBOX" and rows[0].uid == broken.uid

    assert await tracker.retry_quarantined(good_id) == (True, "reply: replied")
    assert (await world.enrollment()).state == EnrollmentState.REPLIED
    resolved, why = await tracker.retry_quarantined(bad_id)
    assert not resolved and "malformed_message" in why
    async with world.db.transaction() as s:
        bad = await s.get(QuarantinedMessage, bad_id)
        assert bad is not None and bad.attempts == 2 and bad.retried_at is not None


async def test_hostile_header_bytes_and_nul_characters_are_stored_cleanly(world: World) -> None:
    raw = (
        b"From: Pat <pat@prospect.example>\r\nTo: rep@cadence.test\r\n"
        b"Subject: caf\xe9 \xff\xfe and a NUL \x00 here\r\n"
        b"Message-ID: <hostile-1@prospect.example>\r\n"
        b"In-Reply-To: " + world.step1_id.encode() + b"\r\n\r\nYes \x00 please \xff\r\n"
    )
    outcome = await world.handle(raw)
    assert outcome.action == "replied"
    [row] = await world.inbound()
    assert "\x00" not in (row.subject or "") and "\x00" not in (row.reply_text or "")
    assert "Yes" in (row.reply_text or "")


async def test_only_trace_fields_is_not_a_message(world: World) -> None:
    raw = (
        b"Return-Path: <>\r\nDelivered-To: rep@cadence.test\r\n"
        b"Received: from [127.0.0.1] by vm with LMTP; Thu, 26 Nov 2026 04:38:17 +0000\r\n"
        b"\x80\x01garbage line\r\nmore\r\n"
    )
    with pytest.raises(MalformedMessageError):
        await world.handle(raw)
    assert await world.inbound() == []


# -- events and webhooks -----------------------------------------------------------------------


async def test_actions_queue_signed_webhook_events_and_a_failing_receiver_is_retried(
    world: World, tmp_path: object
) -> None:
    from pathlib import Path

    box = SecretBox.from_settings("test-key", Path(str(tmp_path)))
    good_secret, bad_secret = "s3cret-for-the-good-receiver", "s3cret-for-the-bad-receiver"
    server = HttpTestServer().start()
    try:
        server.route("127.0.0.1", "/hooks", Reply(status=204, content_type="application/json"))
        server.route("127.0.0.1", "/broken", Reply(status=503))
        async with world.db.transaction() as s:
            await add_webhook(s, box, url=server.url("127.0.0.1", "/hooks"), secret=good_secret)
            await add_webhook(
                s,
                box,
                url=server.url("127.0.0.1", "/broken"),
                secret=bad_secret,
                events=["prospect.*"],
            )
        await world.handle(reply(in_reply_to=world.step1_id))
        await world.handle(hard_bounce("<x@y.example>", rcpt="nobody@prospect.example"))
        async with world.db.transaction() as s:
            queued = list(await s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        # The reply goes to the catch-all receiver only ("prospect.*" does not want it).
        assert [q.event_type for q in queued] == ["enrollment.replied"]

        report = await WebhookDispatcher(world.db, box).run_once()
        assert report.delivered == 1
        [request] = [r for r in server.requests if r.route_path == "/hooks"]
        assert verify(good_secret, request.body, request.headers[SIGNATURE_HEADER.lower()])
        assert not verify(bad_secret, request.body, request.headers[SIGNATURE_HEADER.lower()])
        import json

        event = json.loads(request.body)
        assert event["type"] == "enrollment.replied"
        assert event["data"]["prospect"]["email"] == PAT
        assert event["data"]["enrollment"]["state"] == "replied"
        assert event["data"]["inbound"]["matched_by"] == "references"

        # An event the broken receiver wants: it fails, is rescheduled, and blocks nothing.
        async with world.db.transaction() as s:
            p = Prospect(email="nobody@prospect.example")
            s.add(p)
        await world.handle(hard_bounce("<x2@y.example>", rcpt="nobody@prospect.example", n=5))
        report = await WebhookDispatcher(world.db, box).run_once()
        assert report.retrying == 1
        async with world.db.transaction() as s:
            rows = list(await s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
            pending = [r for r in rows if r.status == DeliveryStatus.PENDING]
            assert len(pending) == 1 and pending[0].attempts == 1
            assert pending[0].last_status == 503 and pending[0].next_attempt_at is not None
            count = await s.scalar(select(func.count(WebhookDelivery.id)))
        assert count == 3  # enrollment.replied, prospect.undeliverable x (good, broken)
    finally:
        server.stop()


async def test_a_hard_bounced_prospect_is_never_enrolled_again(world: World) -> None:
    from cadence.engine.enrollments import enroll

    await world.handle(hard_bounce(world.step1_id))
    async with world.db.transaction() as s:
        s.add(Cadence(name="second-try", steps=[Step(position=0, subject="Hi", body="x")]))
    async with world.db.transaction() as s:
        result = await enroll(
            s, cadence_name="second-try", mailbox_address=REP, emails=[PAT], now=world.clock()
        )
    assert result.enrolled == 0 and result.do_not_contact == 1
