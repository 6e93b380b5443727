"""Reply tracking end to end, against the real Dovecot and SMTP servers, on SQLite and
PostgreSQL, with an injected clock:

* a prospect who replies between step 1 and step 2 never receives step 2 - when the reply
  arrives while the worker is stopped (``cadence run --once`` afterwards), and while the
  worker is running and its IDLE connection is dropped (``doveadm kick``);
* an out-of-office pauses the enrollment, which resumes after the return date;
* a bounce stops the enrollment and marks the prospect undeliverable;
* a malformed message is quarantined, the watcher goes on, and ``quarantine retry`` runs;
* webhooks receive signed events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from cadence.config import Settings
from cadence.engine.cadences import apply_cadence, parse_cadence
from cadence.engine.enrollments import enroll
from cadence.engine.events import add_webhook
from cadence.engine.mailboxes import MailboxSpec, save_mailbox
from cadence.engine.prospects import import_prospects, parse_csv
from cadence.engine.runtime import Runtime
from cadence.engine.sending import SendingEngine, SendPolicy
from cadence.engine.webhooks import SIGNATURE_HEADER, verify
from cadence.mail.endpoints import Endpoint, Security
from cadence.store.db import Database, open_database
from cadence.store.models import Enrollment, EnrollmentState, Mailbox, Prospect
from cadence.store.secrets import SecretBox
from cadence.testing.fixtures import TestMailbox
from cadence.testing.http_server import HttpTestServer, Reply
from cadence.workers.watcher import WatcherService, WatchOptions, run_workers

from .helpers import cadence, cli_env, mailbox_options, read_folder
from .test_replies import dsn, hard_bounce

CADENCE_YAML = """\
name: intro
steps:
  - type: email
    subject: "Quick question, {{ first_name }}"
    body: "Hi {{ first_name | default('there') }}, ..."
    window: {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
  - type: email
    delay: {business_days: 2}
    reply_in_thread: true
    body: "Following up on my note below."
"""

FRIDAY = "2026-11-27T10:00:00+00:00"  # step 1
TUESDAY = "2026-12-01T10:00:00+00:00"  # step 2 due (two business days later)


def answer(prospect: TestMailbox, step1: EmailMessage, text: str, n: int = 1) -> bytes:
    """What a person's mail client sends back: threaded under our message."""
    return (
        f"From: {prospect.address}\r\nTo: {step1['From']}\r\n"
        f"Subject: Re: {step1['Subject']}\r\nDate: Fri, 27 Nov 2026 11:00:00 +0000\r\n"
        f"Message-ID: <answer-{n}-{time.time_ns()}@cadence.test>\r\n"
        f"In-Reply-To: {step1['Message-ID']}\r\nReferences: {step1['Message-ID']}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\n"
        f"> {step1.get_body(('plain',)).get_content()[:40]}\r\n"  # type: ignore[union-attr]
    ).encode()


def out_of_office(prospect: TestMailbox, step1: EmailMessage, text: str) -> bytes:
    return (
        f"From: {prospect.address}\r\nTo: {step1['From']}\r\n"
        f"Subject: Automatic reply: {step1['Subject']}\r\n"
        "Date: Fri, 27 Nov 2026 10:01:00 +0000\r\n"
        f"Message-ID: <ooo-{time.time_ns()}@cadence.test>\r\n"
        f"In-Reply-To: {step1['Message-ID']}\r\nAuto-Submitted: auto-replied\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


def setup_cli(
    env: dict[str, str], tmp_path: Path, rep: TestMailbox, prospects: list[TestMailbox]
) -> None:
    cadence(env, "mailbox", "add", *mailbox_options(rep), "--min-gap", "0", "--jitter", "0")
    (tmp_path / "intro.yaml").write_text(CADENCE_YAML)
    cadence(env, "cadence", "apply", str(tmp_path / "intro.yaml"))
    rows = "".join(f"{p.address},P{i},Jones,Acme,UTC\n" for i, p in enumerate(prospects))
    (tmp_path / "prospects.csv").write_text("email,first_name,last_name,company,timezone\n" + rows)
    cadence(env, "prospects", "import", str(tmp_path / "prospects.csv"))
    cadence(env, "enroll", "--cadence", "intro", "--mailbox", rep.address, "--all", "--now", FRIDAY)


def run_once(env: dict[str, str], now: str) -> dict[str, int]:
    counts: dict[str, int] = json.loads(
        cadence(env, "run", "--once", "--json", "--now", now).stdout
    )
    return counts


def states(env: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    rows = json.loads(cadence(env, "enrollments", "list", "--json").stdout)
    return {r["prospect"]: (r["state"], r["reason"]) for r in rows}


async def prospect_row(db_url: str, email: str) -> Prospect:
    db = await open_database(db_url, migrate=False)
    try:
        async with db.transaction() as s:
            row = await s.scalar(select(Prospect).where(Prospect.email == email))
            assert row is not None
            return row
    finally:
        await db.close()


def test_reply_while_stopped_never_gets_step_2_and_bad_mail_is_quarantined(
    db_url: str, tmp_path: Path, new_mailbox: Callable[..., TestMailbox]
) -> None:
    rep, pat, sam = new_mailbox("rep"), new_mailbox("pat"), new_mailbox("sam")
    home = tmp_path / "home"
    env = cli_env(home, db_url, CADENCE_PASSWORD=rep.password)
    setup_cli(env, tmp_path, rep, [pat, sam])

    hooks = HttpTestServer().start()
    try:
        hooks.route("127.0.0.1", "/cadence", Reply(status=200, content_type="application/json"))
        secret = "whsec-0123456789abcdef"

        async def register() -> None:
            db = await open_database(db_url, migrate=False)
            async with db.transaction() as s:
                box = SecretBox.from_settings(None, home)
                await add_webhook(s, box, url=hooks.url("127.0.0.1", "/cadence"), secret=secret)
            await db.close()

        asyncio.run(register())

        assert run_once(env, FRIDAY)["sent"] == 2
        [step1] = read_folder(pat)

        # While Cadence is stopped: a hostile message, then Pat's answer.
        rep.dovecot.deliver(rep.address, b"\x00\x01garbage line\r\nmore garbage\r\n")
        rep.dovecot.deliver(
            rep.address, answer(pat, step1, "Yes, call me on Thursday."), pat.address
        )

        counts = run_once(env, TUESDAY)
        assert counts["sent"] == 1  # Sam's step 2 only
        assert counts["inbound"] == 2 and counts["quarantined"] == 1
        assert len(read_folder(pat)) == 1  # never step 2
        assert len(read_folder(sam)) == 2
        now = states(env)
        assert now[pat.address][0] == "replied"
        assert now[sam.address][0] == "finished"

        listing = json.loads(cadence(env, "quarantine", "list", "--json").stdout)
        assert len(listing) == 1
        assert listing[0]["error_code"] == "malformed_message"
        assert listing[0]["mailbox"] == rep.address and listing[0]["folder"] == "INBOX"
        retry = cadence(env, "quarantine", "retry", "--all", check=False)
        assert retry.returncode == 1 and "still quarantined" in retry.stdout
        listing = json.loads(cadence(env, "quarantine", "list", "--json").stdout)
        assert listing[0]["attempts"] == 2 and listing[0]["retried_at"] is not None

        # Running again processes nothing twice.
        counts = run_once(env, TUESDAY)
        assert counts["inbound"] == 0 and counts["sent"] == 0

        # The webhook got the reply, signed.
        events = [json.loads(r.body) for r in hooks.requests]
        replied = [e for e in events if e["type"] == "enrollment.replied"]
        assert len(replied) == 1
        assert replied[0]["data"]["prospect"]["email"] == pat.address
        assert "call me on Thursday" in replied[0]["data"]["reply_text"]
        request = next(r for r in hooks.requests if b"enrollment.replied" in r.body)
        assert verify(secret, request.body, request.headers[SIGNATURE_HEADER.lower()])
    finally:
        hooks.stop()


def test_out_of_office_pauses_until_after_the_return_date_and_a_bounce_stops(
    db_url: str, tmp_path: Path, new_mailbox: Callable[..., TestMailbox]
) -> None:
    rep, pat, sam = new_mailbox("rep"), new_mailbox("pat"), new_mailbox("sam")
    env = cli_env(tmp_path / "home", db_url, CADENCE_PASSWORD=rep.password)
    setup_cli(env, tmp_path, rep, [pat, sam])
    assert run_once(env, FRIDAY)["sent"] == 2
    [pat_step1] = read_folder(pat)
    [sam_step1] = read_folder(sam)

    text = "I am out of the office and will be back on Monday 7 December."
    rep.dovecot.deliver(rep.address, out_of_office(pat, pat_step1, text), pat.address)
    rep.dovecot.deliver(rep.address, hard_bounce(sam_step1["Message-ID"], rcpt=sam.address))

    assert run_once(env, TUESDAY)["sent"] == 0
    now = states(env)
    assert now[pat.address][0] == "paused" and "2026-12-07" in (now[pat.address][1] or "")
    assert now[sam.address][0] == "bounced"
    assert asyncio.run(prospect_row(db_url, sam.address)).undeliverable

    # The Monday of the return: still paused.  Resumes the next business day (09:00, the
    # mailbox's working hours) with step 2, threaded under step 1.
    assert run_once(env, "2026-12-07T15:00:00+00:00")["sent"] == 0
    assert run_once(env, "2026-12-08T09:30:00+00:00")["sent"] == 1
    inbox = read_folder(pat)
    assert len(inbox) == 2
    second = next(m for m in inbox if m["Message-ID"] != pat_step1["Message-ID"])
    assert second["In-Reply-To"] == pat_step1["Message-ID"]
    assert second["Thread-Index"] is not None
    assert len(read_folder(sam)) == 1


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def wait_for_state(db: Database, enrollment_id: int, state: str, timeout: float) -> float:
    start = time.monotonic()
    while True:
        async with db.transaction() as s:
            e = await s.get(Enrollment, enrollment_id)
            assert e is not None
            if e.state == state:
                return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"enrollment still {e.state}"
        await asyncio.sleep(0.05)


async def in_process(
    db: Database, tmp_path: Path, rep: TestMailbox, prospects: list[TestMailbox], clock: FixedClock
) -> tuple[SecretBox, dict[str, int]]:
    """The rep's mailbox, the cadence and the prospects in the store; step 1 sent to each."""
    secrets = SecretBox.from_settings("e2e-key", tmp_path)
    spec = MailboxSpec(
        address=rep.address, username=rep.address, password=rep.password,
        imap=Endpoint(rep.host, rep.imaps_port, Security.TLS),
        smtp=Endpoint(rep.host, rep.smtp_starttls_port, Security.STARTTLS),
        ca_file=str(rep.ca_file), min_gap_seconds=0, jitter_seconds=0,
    )  # fmt: skip
    rows = "".join(f"{p.address},P{i},UTC\n" for i, p in enumerate(prospects))
    parsed, report = parse_csv("email,first_name,timezone\n" + rows)
    async with db.transaction() as s:
        await save_mailbox(s, spec, secrets)
        await apply_cadence(s, parse_cadence(CADENCE_YAML))
        await import_prospects(s, parsed, report)
        await enroll(s, cadence_name="intro", mailbox_address=rep.address, emails=None, now=clock())
    sent = (await SendingEngine(db, secrets, clock, policy=SendPolicy()).run_pass()).sent
    assert sent == len(prospects)
    async with db.transaction() as s:
        ids = {
            p.email: e.id
            for e, p in (await s.execute(select(Enrollment, Prospect).join(Prospect))).all()
        }
    return secrets, ids


async def test_running_worker_stops_on_a_reply_also_after_idle_drops(
    db: Database, tmp_path: Path, new_mailbox: Callable[..., TestMailbox]
) -> None:
    rep, pat, sam = new_mailbox("rep"), new_mailbox("pat"), new_mailbox("sam")
    clock = FixedClock(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    secrets, ids = await in_process(db, tmp_path, rep, [pat, sam], clock)
    [pat_step1], [sam_step1] = read_folder(pat), read_folder(sam)

    runtime = Runtime(Settings(home=tmp_path), db, secrets)
    service = WatcherService(
        db, secrets, clock, options=WatchOptions(backoff_base=0.05, backoff_cap=0.5)
    )
    stop = asyncio.Event()
    worker = asyncio.ensure_future(run_workers(runtime, clock, stop, service=service))
    try:
        deadline = time.monotonic() + 15
        while [h.state for h in service.health().values()] != ["idle"]:
            assert time.monotonic() < deadline, service.health()
            await asyncio.sleep(0.05)

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            rep.dovecot.deliver,
            rep.address,
            answer(pat, pat_step1, "Interested!"),
            pat.address,
        )
        seconds = await wait_for_state(db, ids[pat.address], EnrollmentState.REPLIED, 10)
        assert seconds < 5

        # The connection drops while idling; Sam answers during the outage.
        await loop.run_in_executor(None, rep.dovecot.kick, rep.address)
        await loop.run_in_executor(
            None,
            rep.dovecot.deliver,
            rep.address,
            answer(sam, sam_step1, "Not now.", n=2),
            sam.address,
        )
        await wait_for_state(db, ids[sam.address], EnrollmentState.REPLIED, 15)
        [health] = service.health().values()
        assert health.reconnects >= 1
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)

    # Tuesday: step 2 is due for both, and goes to neither.
    clock.now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert (await SendingEngine(db, secrets, clock, policy=SendPolicy()).run_pass()).sent == 0
    assert len(read_folder(pat)) == 1 and len(read_folder(sam)) == 1


async def test_soft_bounce_sends_the_step_again_with_a_new_message_id(
    db: Database, tmp_path: Path, new_mailbox: Callable[..., TestMailbox]
) -> None:
    rep, pat = new_mailbox("rep"), new_mailbox("pat")
    clock = FixedClock(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    secrets, ids = await in_process(db, tmp_path, rep, [pat], clock)
    [first] = read_folder(pat)
    full = dsn(
        first["Message-ID"], pat.address, "4.2.2",
        f"452 4.2.2 <{pat.address}>: Mailbox full, quota exceeded",
    )  # fmt: skip
    rep.dovecot.deliver(rep.address, full)
    service = WatcherService(db, secrets, clock)
    assert await service.sync_all_once() == {1: None}
    assert service.outcomes["retry"] == 1

    engine = SendingEngine(db, secrets, clock, policy=SendPolicy())
    assert (await engine.run_pass()).sent == 0  # not before the retry delay
    clock.now += timedelta(days=1, minutes=1)
    assert (await engine.run_pass()).sent == 1
    inbox = read_folder(pat)
    assert len(inbox) == 2
    again = inbox[1]
    assert again["Subject"] == first["Subject"]
    assert again["Message-ID"] != first["Message-ID"]
    assert again["Thread-Index"] == first["Thread-Index"]
    async with db.transaction() as s:
        e = await s.get(Enrollment, ids[pat.address])
        assert e is not None and e.state == EnrollmentState.ACTIVE and e.current_step == 1
    # Exactly one Sent copy per attempt.
    sent_ids = sorted(m["Message-ID"] for m in read_folder(rep, "Sent"))
    assert sent_ids == sorted([first["Message-ID"], again["Message-ID"]])


async def test_watchers_follow_mailboxes_added_paused_and_changed(
    db: Database, tmp_path: Path, new_mailbox: Callable[..., TestMailbox]
) -> None:
    rep, other = new_mailbox("rep"), new_mailbox("rep")
    clock = FixedClock(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    secrets = SecretBox.from_settings("e2e-key", tmp_path)
    service = WatcherService(db, secrets, clock, options=WatchOptions(rescan_interval=0.2))
    stop = asyncio.Event()
    running = asyncio.ensure_future(service.run(stop))

    async def states_soon(expected: list[str]) -> None:
        deadline = time.monotonic() + 15
        while sorted(h.state for h in service.health().values()) != expected:
            assert time.monotonic() < deadline, service.health()
            await asyncio.sleep(0.05)

    def spec(box: TestMailbox) -> MailboxSpec:
        return MailboxSpec(
            address=box.address, username=box.address, password=box.password,
            imap=Endpoint(box.host, box.imaps_port, Security.TLS),
            smtp=Endpoint(box.host, box.smtp_starttls_port, Security.STARTTLS),
            ca_file=str(box.ca_file),
        )  # fmt: skip

    try:
        await states_soon([])
        async with db.transaction() as s:
            await save_mailbox(s, spec(rep), secrets)
        await states_soon(["idle"])
        async with db.transaction() as s:
            mailbox, _ = await save_mailbox(s, spec(other), secrets)
            other_id = mailbox.id
        service.rescan()  # what the API does after adding one
        await states_soon(["idle", "idle"])
        async with db.transaction() as s:
            row = await s.get(Mailbox, other_id)
            assert row is not None
            row.status = "paused"
        await states_soon(["idle"])
        assert other_id not in service.health()
    finally:
        stop.set()
        await asyncio.wait_for(running, 20)
    assert service.health() == {}
