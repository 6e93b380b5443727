"""The mailbox watcher against a real Dovecot: IDLE, polling, catch-up, resync, failures."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from cadence.engine.mailbox_sync import (
    Backoff,
    FolderCheckpoint,
    InboundMessage,
    MailboxWatcher,
    MemoryCheckpoints,
)
from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint, Security
from cadence.mail.imap import ImapSession, connect_imap
from cadence.testing.fixtures import TestMailbox


def message(n: int, subject: str = "reply") -> bytes:
    return (
        f"From: prospect@example.com\r\nTo: rep@cadence.test\r\nSubject: {subject} {n}\r\n"
        f"Message-ID: <m{n}-{time.time_ns()}@example.com>\r\n\r\nbody {n}\r\n"
    ).encode()


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.items: list[InboundMessage] = []
        self.errors: list[tuple[InboundMessage, BaseException]] = []
        self.fail_on = fail_on
        self.event = asyncio.Event()

    async def sink(self, item: InboundMessage) -> None:
        if self.fail_on and self.fail_on.encode() in item.raw:
            raise ValueError("cannot parse this one")
        self.items.append(item)
        self.event.set()

    async def on_error(self, item: InboundMessage, exc: BaseException) -> None:
        self.errors.append((item, exc))
        self.event.set()

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.items) + len(self.errors) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"only {len(self.items)} of {count} messages arrived"
            self.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), remaining)

    def subjects(self) -> list[str]:
        out = []
        for item in self.items:
            for line in item.raw.split(b"\r\n"):
                if line.startswith(b"Subject: "):
                    out.append(line[9:].decode())
        return out


def connector(mailbox: TestMailbox) -> Callable[[], Awaitable[ImapSession]]:
    async def connect() -> ImapSession:
        session = await connect_imap(
            Endpoint(mailbox.host, mailbox.imaps_port, Security.TLS),
            ConnectOptions(ca_file=str(mailbox.ca_file), timeout=5),
        )
        await session.login(Credentials(mailbox.address, mailbox.password))
        return session

    return connect


Start = Callable[[MailboxWatcher], "asyncio.Task[None]"]


@pytest.fixture
async def running() -> AsyncIterator[Start]:
    tasks: list[tuple[MailboxWatcher, asyncio.Task[None]]] = []

    def start(watcher: MailboxWatcher) -> asyncio.Task[None]:
        task = asyncio.ensure_future(watcher.run())
        tasks.append((watcher, task))
        return task

    yield start
    for watcher, task in tasks:
        watcher.stop()
        await asyncio.wait_for(task, 10)


def make_watcher(mailbox: TestMailbox, rec: Recorder, store: MemoryCheckpoints,
                 **kwargs: object) -> MailboxWatcher:
    return MailboxWatcher(
        1, connector(mailbox), store, rec.sink, rec.on_error,
        backoff=Backoff(base=0.05, cap=0.5), **kwargs,  # type: ignore[arg-type]
    )


async def wait_state(watcher: MailboxWatcher, state: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while watcher.state != state:
        assert time.monotonic() < deadline, f"watcher is {watcher.state}, not {state}"
        await asyncio.sleep(0.02)


async def deliver(mailbox: TestMailbox, raw: bytes, folder: str | None = None) -> None:
    rcpt = mailbox.address
    if folder:
        local, _, domain = rcpt.partition("@")
        rcpt = f"{local}+{folder}@{domain}"
    await asyncio.get_running_loop().run_in_executor(None, mailbox.dovecot.deliver, rcpt, raw)


async def test_idle_sees_new_mail_and_bursts(mailbox: TestMailbox, running: Start) -> None:
    rec = Recorder()
    watcher = make_watcher(mailbox, rec, MemoryCheckpoints())
    running(watcher)
    await wait_state(watcher, "idle")
    await deliver(mailbox, message(1))
    await rec.wait_for(1)
    # a burst right after: each is seen, none is lost or repeated
    for n in (2, 3, 4):
        await deliver(mailbox, message(n))
    await rec.wait_for(4)
    assert rec.subjects() == ["reply 1", "reply 2", "reply 3", "reply 4"]
    assert [i.uid for i in rec.items] == sorted(i.uid for i in rec.items)
    assert all(i.folder == "INBOX" and not i.resync and not i.truncated for i in rec.items)


async def test_old_mail_is_history_and_mail_while_stopped_is_caught_up(
    mailbox: TestMailbox, running: Start
) -> None:
    await deliver(mailbox, message(0, "before connecting"))
    store = MemoryCheckpoints()
    rec = Recorder()
    watcher = make_watcher(mailbox, rec, store)
    task = running(watcher)
    await wait_state(watcher, "idle")
    assert rec.items == []  # no checkpoint and no start date: existing mail is not a reply
    watcher.stop()
    await asyncio.wait_for(task, 10)
    await deliver(mailbox, message(1, "while stopped"))
    await deliver(mailbox, message(2, "while stopped"))
    rec2 = Recorder()
    watcher2 = make_watcher(mailbox, rec2, store)
    running(watcher2)
    await rec2.wait_for(2)
    await wait_state(watcher2, "idle")
    assert rec2.subjects() == ["while stopped 1", "while stopped 2"]


async def test_start_since_processes_mail_from_that_date(
    mailbox: TestMailbox, running: Start
) -> None:
    await deliver(mailbox, message(0, "arrived after connecting"))
    rec = Recorder()
    watcher = make_watcher(mailbox, rec, MemoryCheckpoints(),
                           start_since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    running(watcher)
    await rec.wait_for(1)
    assert rec.subjects() == ["arrived after connecting 0"]


async def test_uidvalidity_change_resyncs_without_treating_old_mail_as_new(
    mailbox: TestMailbox, running: Start
) -> None:
    store = MemoryCheckpoints()
    rec = Recorder()
    watcher = make_watcher(mailbox, rec, store)
    task = running(watcher)
    await wait_state(watcher, "idle")
    await deliver(mailbox, message(1))
    await rec.wait_for(1)
    watcher.stop()
    await asyncio.wait_for(task, 10)
    cp = store.data[(1, "INBOX")]
    # The server renumbered the folder (restore from backup, migration): UIDVALIDITY differs.
    store.data[(1, "INBOX")] = FolderCheckpoint(cp.uidvalidity + 1, cp.last_uid, cp.synced_at)
    rec2 = Recorder()
    watcher2 = make_watcher(mailbox, rec2, store)
    running(watcher2)
    await rec2.wait_for(1)
    await wait_state(watcher2, "idle")
    assert all(i.resync for i in rec2.items)  # flagged: the sink dedupes by Message-ID
    assert store.data[(1, "INBOX")].uidvalidity == cp.uidvalidity


async def test_a_bad_message_is_quarantined_and_the_watcher_goes_on(
    mailbox: TestMailbox, running: Start
) -> None:
    rec = Recorder(fail_on="poison")
    watcher = make_watcher(mailbox, rec, MemoryCheckpoints())
    running(watcher)
    await wait_state(watcher, "idle")
    await deliver(mailbox, message(1, "poison"))
    await deliver(mailbox, message(2, "fine"))
    await rec.wait_for(2)
    assert len(rec.errors) == 1 and isinstance(rec.errors[0][1], ValueError)
    assert rec.subjects() == ["fine 2"]
    assert watcher.state in ("idle", "syncing")


async def test_connection_dropped_during_idle_reconnects_and_catches_up(
    mailbox: TestMailbox, running: Start
) -> None:
    rec = Recorder()
    watcher = make_watcher(mailbox, rec, MemoryCheckpoints())
    running(watcher)
    await wait_state(watcher, "idle")
    await asyncio.get_running_loop().run_in_executor(None, mailbox.dovecot.kick, mailbox.address)
    await deliver(mailbox, message(1, "during the outage"))
    await rec.wait_for(1, timeout=15)
    assert watcher.health.reconnects >= 1
    assert rec.subjects() == ["during the outage 1"]


async def test_polling_when_idle_is_off_and_junk_is_watched(
    mailbox: TestMailbox, running: Start
) -> None:
    rec = Recorder()
    watcher = make_watcher(mailbox, rec, MemoryCheckpoints(), use_idle=False, poll_interval=0.3)
    running(watcher)
    await wait_state(watcher, "polling")
    await deliver(mailbox, message(1, "in junk"), folder="Junk")
    await deliver(mailbox, message(2, "in inbox"))
    await rec.wait_for(2)
    assert {(i.folder, s) for i, s in zip(rec.items, rec.subjects(), strict=True)} == {
        ("Junk", "in junk 1"), ("INBOX", "in inbox 2")}


async def test_large_messages_are_fetched_only_partly(
    mailbox: TestMailbox, running: Start
) -> None:
    rec = Recorder()
    watcher = make_watcher(mailbox, rec, MemoryCheckpoints(), fetch_limit=4096)
    running(watcher)
    await wait_state(watcher, "idle")
    big = message(1, "big") + b"x" * 100_000 + b"\r\n"
    await deliver(mailbox, big)
    await rec.wait_for(1)
    item = rec.items[0]
    assert item.truncated and len(item.raw) == 4096 and (item.size or 0) > 100_000
