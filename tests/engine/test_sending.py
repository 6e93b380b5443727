"""The sending engine in-process against the real test bed, with an injected clock:
provider Message-IDs, 4xx retry with backoff, 5xx bounce, authentication failure, Sent copies,
pacing, windows and template holds."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cadence.engine.cadences import apply_cadence, parse_cadence
from cadence.engine.enrollments import enroll
from cadence.engine.mailboxes import MailboxConnection, MailboxSpec, save_mailbox
from cadence.engine.prospects import import_prospects, parse_csv
from cadence.engine.sending import SendingEngine, SendPolicy, backoff_for
from cadence.engine.transport import LiveTransport, MailTransport
from cadence.mail.endpoints import Endpoint, Security
from cadence.store.db import Database
from cadence.store.models import Enrollment, Mailbox, OutboundMessage
from cadence.store.secrets import SecretBox
from cadence.testing.fixtures import TestMailbox
from cadence.testing.smtp_server import SMTPTestServer

from .helpers import read_folder

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday

TWO_STEPS = """\
name: intro
steps:
  - subject: "Quick question, {{ first_name | default('there') }}"
    body: "Hi {{ first_name | default('there') }}, about {{ company | default('you') }}."
    window: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00"}
  - delay: {business_days: 1}
    reply_in_thread: true
    body: "Bumping this up."
    window: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00"}
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    db: Database
    secrets: SecretBox
    clock: Clock
    rep: TestMailbox
    smtp: SMTPTestServer

    def engine(self, **policy: object) -> SendingEngine:
        return SendingEngine(
            self.db,
            self.secrets,
            self.clock,
            policy=SendPolicy(**policy),  # type: ignore[arg-type]
        )

    async def setup(
        self,
        prospects: Sequence[TestMailbox | str],
        *,
        yaml: str = TWO_STEPS,
        min_gap: int = 0,
        jitter: int = 0,
        password: str | None = None,
        csv_rows: list[str] | None = None,
    ) -> None:
        spec = MailboxSpec(
            address=self.rep.address,
            username=self.rep.address,
            password=password or self.rep.password,
            imap=Endpoint(self.rep.host, self.rep.imaps_port, Security.TLS),
            smtp=Endpoint(self.rep.host, self.rep.smtp_starttls_port, Security.STARTTLS),
            ca_file=str(self.rep.ca_file),
            min_gap_seconds=min_gap,
            jitter_seconds=jitter,
            timezone="Europe/Paris",
        )
        rows = csv_rows or [
            f"{p.address if isinstance(p, TestMailbox) else p},Pat,Acme,Europe/Paris"
            for p in prospects
        ]
        parsed, report = parse_csv("email,first_name,company,timezone\n" + "\n".join(rows) + "\n")
        async with self.db.transaction() as s:
            await save_mailbox(s, spec, self.secrets)
            await apply_cadence(s, parse_cadence(yaml))
            await import_prospects(s, parsed, report)
            name = parse_cadence(yaml).name
            await enroll(
                s,
                cadence_name=name,
                mailbox_address=self.rep.address,
                emails=None,
                now=self.clock(),
            )

    async def outbound(self) -> list[OutboundMessage]:
        async with self.db.transaction() as s:
            return list(await s.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))

    async def enrollments(self) -> list[Enrollment]:
        async with self.db.transaction() as s:
            return list(await s.scalars(select(Enrollment).order_by(Enrollment.id)))

    async def mailbox(self) -> Mailbox:
        async with self.db.transaction() as s:
            mb: Mailbox | None = await s.scalar(select(Mailbox))
            assert mb is not None
            return mb


@pytest.fixture
def world(
    db: Database,
    tmp_path: Path,
    new_mailbox: Callable[..., TestMailbox],
    smtp_server: SMTPTestServer,
) -> Iterator[World]:
    yield World(
        db, SecretBox.from_settings(None, tmp_path), Clock(T0), new_mailbox("rep"), smtp_server
    )
    smtp_server.set_fault(None)
    assert smtp_server.handler is not None
    smtp_server.handler.file_sent_copy = False
    smtp_server.handler.rewrite_message_id = False


async def test_provider_message_id_is_recorded_and_followups_thread_to_it(
    world: World, new_mailbox: Callable[..., TestMailbox]
) -> None:
    pat = new_mailbox("pat")
    assert world.smtp.handler is not None
    world.smtp.handler.rewrite_message_id = True  # Microsoft 365's behaviour
    await world.setup([pat])
    report = await world.engine().run_pass()
    assert report.sent == 1
    [out] = await world.outbound()
    assert out.provider_message_id and out.provider_message_id.endswith("prod.outlook.com>")
    assert out.provider_message_id != out.message_id
    assert out.smtp_code == 250 and "OK" in (out.smtp_reply or "")
    delivered = read_folder(pat)
    assert delivered[0]["Message-ID"] == out.provider_message_id
    # Our copy in Sent is found by either id; here the server did not file one, so we did.
    assert out.sent_copy_by == "cadence" and out.sent_uid and out.sent_uidvalidity

    world.clock.now = T0 + timedelta(days=1)
    assert (await world.engine().run_pass()).sent == 1
    second = read_folder(pat)[1]
    assert second["In-Reply-To"] == out.provider_message_id
    assert second["Subject"] == "Re: Quick question, Pat"


async def test_temporary_failure_retries_with_backoff_then_sends(
    world: World, new_mailbox: Callable[..., TestMailbox]
) -> None:
    pat = new_mailbox("pat")
    await world.setup([pat])
    world.smtp.set_fault(lambda stage, _: "451 4.3.0 try again later" if stage == "RCPT" else None)
    report = await world.engine().run_pass()
    assert report.retried == 1 and report.sent == 0
    [out] = await world.outbound()
    [enr] = await world.enrollments()
    assert out.state == "retry" and out.attempts == 1 and out.smtp_code == 451
    assert enr.state == "active" and enr.next_due_at is not None
    wait = enr.next_due_at - T0
    assert timedelta(minutes=1, seconds=36) <= wait <= timedelta(minutes=2, seconds=24)
    assert "451" in (enr.reason or "")
    # Before the backoff ends nothing is tried again.
    world.clock.now = T0 + timedelta(seconds=30)
    world.smtp.set_fault(None)
    assert (await world.engine().run_pass()).sent == 0
    world.clock.now = enr.next_due_at
    assert (await world.engine().run_pass()).sent == 1
    [again] = await world.outbound()
    assert again.state == "sent" and again.message_id == out.message_id  # same Message-ID
    assert len(read_folder(pat)) == 1


def test_backoff_grows_and_is_capped() -> None:
    policy = SendPolicy()
    waits = [backoff_for(n, policy, "<x@y>") for n in range(1, 10)]
    assert waits[1] > waits[0] and waits[3] > waits[2]
    assert max(waits) <= policy.max_backoff * 1.2


async def test_permanent_rcpt_refusal_bounces_the_enrollment(world: World) -> None:
    await world.setup(["nobody-here@cadence.test"])  # the test bed answers 550 5.1.1
    report = await world.engine().run_pass()
    assert report.bounced == 1
    [out] = await world.outbound()
    [enr] = await world.enrollments()
    assert out.state == "bounced" and out.smtp_code == 550
    assert enr.state == "bounced" and "550" in (enr.reason or "") and "5.1.1" in (enr.reason or "")
    assert (await world.engine().run_pass()).sent == 0  # never tried again


async def test_authentication_failure_pauses_the_mailbox_without_hammering(
    world: World, new_mailbox: Callable[..., TestMailbox]
) -> None:
    pat = new_mailbox("pat")
    await world.setup([pat], password="wrong password")
    opened: list[str] = []

    def counting(connection: MailboxConnection) -> MailTransport:
        opened.append(connection.address)
        return LiveTransport(connection)

    def engine() -> SendingEngine:
        return SendingEngine(world.db, world.secrets, world.clock, transport_factory=counting)

    report = await engine().run_pass()
    assert report.sent == 0
    mb = await world.mailbox()
    assert mb.status == "needs_attention"
    assert mb.status_reason and "password" in mb.status_reason.lower()
    [enr] = await world.enrollments()
    assert enr.state == "active"
    # Later passes do not log in again while the mailbox needs attention.
    for minutes in (1, 10, 60):
        world.clock.now = T0 + timedelta(minutes=minutes)
        assert (await engine().run_pass()).sent == 0
    assert opened == [world.rep.address]  # one login attempt, then no more
    assert read_folder(pat) == []


async def test_server_filed_sent_copy_is_not_duplicated(
    world: World, new_mailbox: Callable[..., TestMailbox]
) -> None:
    pat = new_mailbox("pat")
    assert world.smtp.handler is not None
    world.smtp.handler.file_sent_copy = True  # Gmail's behaviour
    await world.setup([pat])
    assert (await world.engine().run_pass()).sent == 1
    [out] = await world.outbound()
    assert out.sent_copy_by == "server" and out.sent_uid is not None
    assert (await world.mailbox()).server_files_sent is True
    assert len(read_folder(world.rep, "Sent")) == 1


async def test_pacing_spreads_sends_and_daily_cap(
    world: World, new_mailbox: Callable[..., TestMailbox]
) -> None:
    prospects = [new_mailbox("p") for _ in range(3)]
    await world.setup(prospects, min_gap=120, jitter=30)
    assert (await world.engine().run_pass()).sent == 1  # never a burst
    world.clock.now = T0 + timedelta(seconds=100)
    assert (await world.engine().run_pass()).sent == 0  # inside the gap
    world.clock.now = T0 + timedelta(seconds=151)
    assert (await world.engine().run_pass()).sent == 1
    world.clock.now = T0 + timedelta(seconds=302)
    assert (await world.engine().run_pass()).sent == 1
    sent_at = sorted(o.sent_at for o in await world.outbound() if o.sent_at)
    assert all(b - a >= timedelta(seconds=120) for a, b in itertools.pairwise(sent_at))


async def test_closed_window_defers_to_next_opening(
    world: World, new_mailbox: Callable[..., TestMailbox]
) -> None:
    pat = new_mailbox("pat")
    world.clock.now = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)  # Friday 18:30 in Paris
    await world.setup([pat])
    report = await world.engine().run_pass()
    assert report.sent == 0 and report.deferred == 1
    [enr] = await world.enrollments()
    # Monday 09:00 in Paris.
    assert enr.next_due_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    world.clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert (await world.engine().run_pass()).sent == 1


async def test_missing_variable_holds_with_reason(
    world: World, new_mailbox: Callable[..., TestMailbox]
) -> None:
    pat = new_mailbox("pat")
    yaml = TWO_STEPS.replace("about {{ company | default('you') }}", "about {{ company }}")
    await world.setup([pat], yaml=yaml, csv_rows=[f"{pat.address},Pat,,Europe/Paris"])
    report = await world.engine().run_pass()
    assert report.held == 1 and report.sent == 0
    [enr] = await world.enrollments()
    assert enr.state == "paused"
    assert "company" in (enr.reason or "")
    assert read_folder(pat) == []


async def test_reply_stops_and_out_of_office_pauses_until_return(
    world: World, new_mailbox: Callable[..., TestMailbox]
) -> None:
    from cadence.engine.enrollments import record_response

    pat, sam = new_mailbox("pat"), new_mailbox("sam")
    await world.setup([pat, sam])
    assert (await world.engine().run_pass()).sent == 2
    by_rcpt = {o.rcpt_to: o for o in await world.outbound()}
    back = T0 + timedelta(days=4)
    async with world.db.transaction() as s:
        replied = await record_response(
            s, [by_rcpt[pat.address].message_id], "replied", now=T0, reason="Pat replied"
        )
        away = await record_response(
            s,
            ["<unrelated@x.test>", by_rcpt[sam.address].message_id],
            "out_of_office",
            now=T0,
            reason="out of office",
            until=back,
        )
    assert len(replied) == 1 and len(away) == 1
    world.clock.now = T0 + timedelta(days=1)  # step 2 would be due now
    assert (await world.engine().run_pass()).sent == 0
    states = {e.id: (e.state, e.reason) for e in await world.enrollments()}
    assert states[replied[0]] == ("replied", "Pat replied")
    assert states[away[0]][0] == "paused"
    world.clock.now = back + timedelta(minutes=1)  # Saturday 28 Nov: outside the window
    assert (await world.engine().run_pass()).sent == 0
    world.clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # Monday 10:00 in Paris
    assert (await world.engine().run_pass()).sent == 1
    assert len(read_folder(sam)) == 2 and len(read_folder(pat)) == 1


ONE_STEP = """
name: single
steps:
  - type: email
    subject: "Hello {{ first_name }}"
    body: "Hi {{ first_name }}"
    window: {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
"""


async def test_an_answer_recorded_while_the_last_step_is_on_its_way_is_not_overwritten(
    world: World, db_url: str, new_mailbox: Callable[..., TestMailbox]
) -> None:
    """The watcher records a reply while the sender is inside the SMTP transaction: the
    message goes out, but the enrollment stays 'replied' instead of becoming 'finished'."""
    import asyncio
    import threading

    from sqlalchemy import update

    from cadence.store.db import open_database

    async def mark_replied() -> None:
        other = await open_database(db_url, migrate=False)
        async with other.transaction() as s:
            await s.execute(update(Enrollment).values(state="replied", reason="replied meanwhile"))
        await other.close()

    def during_data(stage: str, _value: str) -> str | None:
        if stage == "DATA":  # runs in the SMTP server's thread, before it accepts
            thread = threading.Thread(target=lambda: asyncio.run(mark_replied()))
            thread.start()
            thread.join()
        return None

    await world.setup([new_mailbox("pat")], yaml=ONE_STEP)
    world.smtp.set_fault(during_data)
    report = await world.engine().run_pass()
    assert report.sent == 1
    [enr] = await world.enrollments()
    assert enr.state == "replied" and enr.reason == "replied meanwhile"
    assert enr.current_step == 1
