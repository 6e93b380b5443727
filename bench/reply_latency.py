"""Reply-detection latency: from a reply being delivered into Dovecot to its enrollment being
stopped in the store.

Starts a private Dovecot and SMTP server, a store (SQLite by default, ``--database-url`` for
PostgreSQL), one rep mailbox with a cadence and prospects who received step 1, and runs the
real worker pieces in this process: ``WatcherService`` (one ``MailboxWatcher`` over TLS) feeding
the ``ReplyTracker`` (classification, matching, the enrollment update committed).  Each reply
is delivered over LMTP; the clock starts when Dovecot has accepted it and stops when the
transaction that marked the enrollment ``replied`` has committed.

Scenarios, with IDLE:
* isolated replies, one at a time;
* bursts: three replies to the same mailbox a couple of seconds apart;
* right after Cadence sent from the mailbox (a real SMTP send plus the Sent-copy APPEND, then
  at once a reply to that very message);
and with polling (IDLE off) at ``--poll-interval``, replies arriving at random moments.
The floor is a bare IDLE client: Dovecot's own delay in announcing new mail.

Usage: python bench/reply_latency.py [--replies 200] [--poll-interval 5]
       [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from cadence.engine.mailboxes import MailboxSpec, save_mailbox
from cadence.engine.replies import Outcome
from cadence.engine.sending import SendingEngine, SendPolicy
from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint, Security
from cadence.mail.imap import connect_imap
from cadence.mail.mime import Party, build_message, make_message_id, to_bytes
from cadence.store.db import Database, open_database
from cadence.store.models import (
    Cadence,
    Enrollment,
    EnrollmentState,
    OutboundMessage,
    OutboundState,
    Prospect,
    Step,
)
from cadence.store.secrets import SecretBox
from cadence.testing.certs import make_certificates
from cadence.testing.dovecot import DEFAULT_PASSWORD, DovecotConfig, DovecotServer
from cadence.testing.smtp_server import SMTPTestServer
from cadence.workers.watcher import WatcherService, WatchOptions

REP = "rep@cadence.test"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name:<34} n={len(ms):3d}  p50 {statistics.median(ms):6.0f} ms  "
        f"p95 {pct(ms, 0.95):6.0f} ms  max {max(ms):6.0f} ms"
    )


@dataclass
class Bed:
    dovecot: DovecotServer
    smtp: SMTPTestServer
    ca: str
    db: Database
    secrets: SecretBox
    mailbox_id: int = 0
    cadence_id: int = 0
    # prospect email -> (enrollment id, our step-1 Message-ID)
    sent: dict[str, tuple[int, str]] = field(default_factory=dict)


async def floor_latency(bed: Bed, n: int) -> list[float]:
    """Dovecot's own announce delay: a bare IDLE client, no watcher logic."""
    user = "floor@cadence.test"
    session = await connect_imap(
        Endpoint("localhost", bed.dovecot.imaps_port, Security.TLS), ConnectOptions(ca_file=bed.ca)
    )
    await session.login(Credentials(user, DEFAULT_PASSWORD))
    await session.select("INBOX")
    loop = asyncio.get_running_loop()
    out = []
    for i in range(n):
        idle = asyncio.ensure_future(session.idle(30))
        await asyncio.sleep(0.05)
        raw = f"From: x@y.example\r\nSubject: floor {i}\r\nMessage-ID: <f{i}@b>\r\n\r\nx\r\n"
        await loop.run_in_executor(None, bed.dovecot.deliver, user, raw.encode())
        t0 = time.monotonic()
        await idle
        out.append(time.monotonic() - t0)
    await session.logout()
    return out


async def setup_store(bed: Bed, prospects: int) -> None:
    now = datetime.now(UTC)
    spec = MailboxSpec(
        address=REP,
        username=REP,
        password=DEFAULT_PASSWORD,
        imap=Endpoint("localhost", bed.dovecot.imaps_port, Security.TLS),
        smtp=Endpoint("localhost", bed.smtp.starttls_port, Security.STARTTLS),
        ca_file=bed.ca,
        min_gap_seconds=0,
        jitter_seconds=0,
        daily_cap=100000,
        work_days="mon,tue,wed,thu,fri,sat,sun",
        work_from="00:00",
        work_to="24:00",
    )
    async with bed.db.transaction() as s:
        mailbox, _ = await save_mailbox(s, spec, bed.secrets)
        cadence = Cadence(
            name="bench",
            steps=[
                Step(position=0, subject="Quick question", body="Hi there"),
                Step(position=1, delay_business_days=2, reply_in_thread=True, body="Bump"),
            ],
        )
        s.add(cadence)
        await s.flush()
        bed.mailbox_id, bed.cadence_id = mailbox.id, cadence.id
        for i in range(prospects):
            email = f"p{i}@prospect.example"
            p = Prospect(email=email, first_name=f"P{i}")
            s.add(p)
            await s.flush()
            e = Enrollment(
                prospect_id=p.id, cadence_id=cadence.id, mailbox_id=mailbox.id,
                state=EnrollmentState.ACTIVE, current_step=1,
                next_due_at=now + timedelta(days=2),
            )  # fmt: skip
            s.add(e)
            await s.flush()
            message_id = make_message_id("cadence.test")
            raw = to_bytes(
                build_message(
                    sender=Party(REP), recipient=Party(email), subject="Quick question",
                    text="Hi there", message_id=message_id, date=now,
                )
            )  # fmt: skip
            s.add(
                OutboundMessage(
                    enrollment_id=e.id, mailbox_id=mailbox.id, step_position=0,
                    message_id=message_id, subject="Quick question", text_body="Hi there",
                    mail_from=REP, rcpt_to=email, raw=raw, state=OutboundState.SENT,
                    sent_at=now, sent_copy_by="cadence",
                )
            )  # fmt: skip
            bed.sent[email] = (e.id, message_id)


def reply_bytes(sender: str, parent: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {REP}\r\nSubject: Re: Quick question\r\n"
        f"Date: {datetime.now(UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"Message-ID: <r-{uuid.uuid4().hex}@prospect.example>\r\n"
        f"In-Reply-To: {parent}\r\nReferences: {parent}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nYes, let's talk.\r\n\r\n> Hi there\r\n"
    ).encode()


class Timer:
    """Wraps the tracker: the time each enrollment's stop was committed."""

    def __init__(self, service: WatcherService) -> None:
        self.stopped: dict[int, float] = {}
        self.events: dict[int, asyncio.Event] = {}
        tracker = service.tracker
        original = tracker.handle

        async def handle(message):  # type: ignore[no-untyped-def]
            outcome: Outcome = await original(message)
            done = time.monotonic()
            for enrollment_id in outcome.enrollment_ids:
                self.stopped.setdefault(enrollment_id, done)
                self.events.setdefault(enrollment_id, asyncio.Event()).set()
            return outcome

        tracker.handle = handle  # type: ignore[method-assign]

    async def wait(self, enrollment_id: int, timeout: float = 60) -> float:
        event = self.events.setdefault(enrollment_id, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout)
        return self.stopped[enrollment_id]


async def deliver(bed: Bed, sender: str, parent: str) -> float:
    raw = reply_bytes(sender, parent)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, bed.dovecot.deliver, REP, raw, sender)
    return time.monotonic()  # Dovecot has accepted it (LMTP DATA answered)


async def start_service(bed: Bed, use_idle: bool, poll: float) -> tuple[WatcherService, Timer]:
    service = WatcherService(
        bed.db,
        bed.secrets,
        lambda: datetime.now(UTC),
        options=WatchOptions(use_idle=use_idle, poll_interval=poll, watch_junk=True),
    )
    timer = Timer(service)
    await service.refresh()
    deadline = time.monotonic() + 30
    want = "idle" if use_idle else "polling"
    while [h.state for h in service.health().values()] != [want]:
        if time.monotonic() > deadline:
            raise SystemExit(f"watcher not ready: {service.health()}")
        await asyncio.sleep(0.05)
    return service, timer


async def stop_service(service: WatcherService) -> None:
    stop = asyncio.Event()
    stop.set()
    await service.run(stop)  # stops every watcher


async def idle_scenarios(
    bed: Bed, pool: list[str], isolated_n: int, bursts_n: int, after_send_n: int
) -> dict[str, list[float]]:
    service, timer = await start_service(bed, use_idle=True, poll=60)
    results: dict[str, list[float]] = {"isolated": [], "burst": [], "after_send": []}
    try:
        for _ in range(isolated_n):
            email = pool.pop()
            enrollment_id, parent = bed.sent[email]
            t0 = await deliver(bed, email, parent)
            results["isolated"].append(await timer.wait(enrollment_id) - t0)
            await asyncio.sleep(random.uniform(0.1, 0.4))
        for _ in range(bursts_n):
            waits = []
            for k in range(3):  # three replies a couple of seconds apart, same mailbox
                email = pool.pop()
                enrollment_id, parent = bed.sent[email]
                t0 = await deliver(bed, email, parent)
                waits.append((enrollment_id, t0))
                if k < 2:
                    await asyncio.sleep(2.0)
            for enrollment_id, t0 in waits:
                results["burst"].append(await timer.wait(enrollment_id) - t0)
            await asyncio.sleep(0.3)
        engine = SendingEngine(bed.db, bed.secrets, lambda: datetime.now(UTC), policy=SendPolicy())
        for i in range(after_send_n):
            email = f"s{i}@cadence.test"
            enrollment_id = await due_enrollment(bed, email)
            report = await engine.run_pass()  # SMTP send + Sent copy over IMAP
            assert report.sent == 1, report
            async with bed.db.transaction() as s:
                just_sent = await s.scalar(
                    select(OutboundMessage.message_id).where(
                        OutboundMessage.enrollment_id == enrollment_id
                    )
                )
            assert just_sent is not None
            t0 = await deliver(bed, email, just_sent)  # the answer, right after the send
            results["after_send"].append(await timer.wait(enrollment_id) - t0)
            await asyncio.sleep(0.2)
    finally:
        await stop_service(service)
    return results


async def due_enrollment(bed: Bed, email: str) -> int:
    bed.dovecot.add_user(email)
    async with bed.db.transaction() as s:
        p = Prospect(email=email, first_name="S")
        s.add(p)
        await s.flush()
        e = Enrollment(
            prospect_id=p.id, cadence_id=bed.cadence_id, mailbox_id=bed.mailbox_id,
            state=EnrollmentState.ACTIVE, current_step=0,
            next_due_at=datetime.now(UTC) - timedelta(seconds=1),
        )  # fmt: skip
        s.add(e)
        await s.flush()
        return e.id


async def polling_scenario(bed: Bed, pool: list[str], n: int, poll: float) -> list[float]:
    service, timer = await start_service(bed, use_idle=False, poll=poll)
    try:
        pending: list[tuple[int, float]] = []
        for _ in range(n):
            email = pool.pop()
            enrollment_id, parent = bed.sent[email]
            pending.append((enrollment_id, await deliver(bed, email, parent)))
            await asyncio.sleep(random.uniform(0, 2 * poll / 10))
        return [await timer.wait(e) - t0 for e, t0 in pending]
    finally:
        await stop_service(service)


async def main_async(args: argparse.Namespace, bed_dir: Path) -> None:
    certs = make_certificates(bed_dir / "certs")
    dovecot = DovecotServer(DovecotConfig("latency", cert=certs.good))
    for user in (REP, "floor@cadence.test"):
        dovecot.add_user(user)
    dovecot.start()
    smtp = SMTPTestServer(dovecot, certs.good, str(certs.ca_file)).start()
    url = args.database_url
    throwaway: str | None = None
    if url and url.startswith("postgres"):
        import asyncpg  # type: ignore[import-untyped]

        throwaway = f"cadence_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(url)
        await admin.execute(f'CREATE DATABASE "{throwaway}"')
        await admin.close()
        url = url.rsplit("/", 1)[0] + "/" + throwaway
    db = await open_database(url or f"sqlite+aiosqlite:///{bed_dir / 'cadence.db'}")
    bed = Bed(dovecot, smtp, str(certs.ca_file), db, SecretBox.from_settings("bench", bed_dir))
    try:
        total = args.replies
        isolated_n = total // 2
        bursts_n = (total * 3 // 10) // 3
        after_send_n = total - isolated_n - bursts_n * 3
        await setup_store(bed, total * 2 + 10)
        pool = list(bed.sent)
        random.shuffle(pool)
        floor = await floor_latency(bed, 30)
        idle = await idle_scenarios(bed, pool, isolated_n, bursts_n, after_send_n)
        polled = await polling_scenario(bed, pool, total, args.poll_interval)
        all_idle = idle["isolated"] + idle["burst"] + idle["after_send"]
        print(f"store: {db.dialect}; one mailbox over TLS; replies delivered over LMTP")
        print(fmt("floor (bare IDLE client)", floor))
        print(fmt("IDLE: all", all_idle))
        print(fmt("IDLE: isolated", idle["isolated"]))
        print(fmt("IDLE: bursts (3 replies, 2 s apart)", idle["burst"]))
        print(fmt("IDLE: right after a send", idle["after_send"]))
        print(fmt(f"polling every {args.poll_interval:g} s", polled))
        floor95 = pct(floor, 0.95)
        print(
            f"IDLE p95 / floor p95 = {pct(all_idle, 0.95) / floor95:.2f}; "
            f"IDLE p95 - floor p95 = {(pct(all_idle, 0.95) - floor95) * 1000:.0f} ms; "
            f"target p95 < 1000 ms: {'met' if pct(all_idle, 0.95) < 1.0 else 'NOT met'}"
        )
    finally:
        await db.close()
        smtp.stop()
        dovecot.stop()
        if throwaway is not None:
            admin = await asyncpg.connect(args.database_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{throwaway}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cadence-bench-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
