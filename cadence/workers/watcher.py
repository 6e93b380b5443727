"""The watcher worker: one ``MailboxWatcher`` per watched mailbox, feeding the reply tracker.

``WatcherService.run(stop)`` starts a watcher for every mailbox that is not paused, re-reads
the mailbox list every ``rescan_interval`` seconds (a mailbox added, paused, resumed or given
a new password is picked up while running) and stops them all when ``stop`` is set.
``sync_all_once()`` is ``cadence run --once``'s catch-up: every mailbox synced from its
checkpoints, then back to the caller.

Checkpoints live in the store (``StoreCheckpoints``), each read or write in its own short
transaction: no database session is ever held while a watcher waits on IMAP.

``run_workers`` is the whole worker - watchers, the sender and the webhook delivery loop - for
``cadence run`` and ``cadence serve``.  Before the first sending pass it lets every watcher
catch up, so a reply that arrived while Cadence was stopped stops its enrollment before the
next step could be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cadence.engine.events import DispatchReport, WebhookDispatcher
from cadence.engine.mailbox_sync import (
    Backoff,
    FolderCheckpoint,
    InboundMessage,
    MailboxWatcher,
    WatcherHealth,
)
from cadence.engine.mailboxes import MailboxConnection, connection_for
from cadence.engine.replies import Outcome, ReplyPolicy, ReplyTracker
from cadence.engine.runtime import Runtime
from cadence.engine.scheduling import Clock
from cadence.engine.sending import PassReport, SendPolicy, TransportFactory
from cadence.engine.transport import LiveTransport
from cadence.errors import CadenceError
from cadence.mail.imap import ImapSession, connect_imap
from cadence.store.db import Database
from cadence.store.secrets import SecretBox
from cadence.store.tracking_repositories import CheckpointRepository, watched_mailboxes
from cadence.workers.sender import run_sender

log = logging.getLogger("cadence.watcher")


class StoreCheckpoints:
    """``CheckpointStore`` in the database.  This process is the only writer of a mailbox's
    checkpoints while it watches it, so reads are cached after the first."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[tuple[int, str], FolderCheckpoint] = {}

    async def load(self, mailbox_id: int, folder: str) -> FolderCheckpoint | None:
        key = (mailbox_id, folder)
        if key in self._cache:
            return self._cache[key]
        async with self.db.transaction() as s:
            row = await CheckpointRepository(s).get(mailbox_id, folder)
            checkpoint = (
                FolderCheckpoint(row.uidvalidity, row.last_uid, row.synced_at) if row else None
            )
        if checkpoint is not None:
            self._cache[key] = checkpoint
        return checkpoint

    async def save(self, mailbox_id: int, folder: str, checkpoint: FolderCheckpoint) -> None:
        async with self.db.transaction() as s:
            await CheckpointRepository(s).put(
                mailbox_id,
                folder,
                checkpoint.uidvalidity,
                checkpoint.last_uid,
                checkpoint.synced_at,
            )
        self._cache[(mailbox_id, folder)] = checkpoint

    def forget(self, mailbox_id: int) -> None:
        for key in [k for k in self._cache if k[0] == mailbox_id]:
            del self._cache[key]


@dataclass(frozen=True)
class WatchOptions:
    use_idle: bool = True
    poll_interval: float = 60.0  # polling period without IDLE; other folders' re-check period
    rescan_interval: float = 30.0  # how often the mailbox list is re-read
    timeout: float = 20.0  # per network step
    catch_up_timeout: float = 60.0  # how long the first sending pass waits for the catch-up
    watch_junk: bool = True
    backoff_base: float = 1.0
    backoff_cap: float = 300.0


@dataclass(frozen=True)
class _Plan:
    mailbox_id: int
    address: str
    connection: MailboxConnection = field(repr=False)
    extra_folders: tuple[str, ...]
    start_since: object
    key: tuple[object, ...] = field(repr=False)


@dataclass
class _Running:
    plan: _Plan
    watcher: MailboxWatcher
    task: asyncio.Task[None]


def _connector(connection: MailboxConnection) -> Callable[[], Awaitable[ImapSession]]:
    async def connect() -> ImapSession:
        session = await connect_imap(connection.imap, connection.options)
        try:
            await session.login(connection.credentials)
        except BaseException:
            session.close()
            raise
        return session

    return connect


class WatcherService:
    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        clock: Clock,
        *,
        policy: ReplyPolicy | None = None,
        options: WatchOptions | None = None,
        dispatcher: WebhookDispatcher | None = None,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.options = options or WatchOptions()
        self.dispatcher = dispatcher
        self.tracker = ReplyTracker(
            db, clock, policy, on_event=dispatcher.wake if dispatcher else None
        )
        self.checkpoints = StoreCheckpoints(db)
        self.outcomes: Counter[str] = Counter()
        self._running: dict[int, _Running] = {}
        self._rescan = asyncio.Event()
        self.started = asyncio.Event()  # set once the first mailbox scan has started watchers

    # -- what the API reads ------------------------------------------------------------------

    def health(self) -> dict[int, WatcherHealth]:
        return {mailbox_id: r.watcher.health for mailbox_id, r in self._running.items()}

    def rescan(self) -> None:
        """Re-read the mailbox list now (the API added or paused a mailbox)."""
        self._rescan.set()

    def wake(self, mailbox_id: int) -> None:
        running = self._running.get(mailbox_id)
        if running is not None:
            running.watcher.wake()

    # -- the sink ----------------------------------------------------------------------------

    async def _sink(self, message: InboundMessage) -> None:
        outcome: Outcome = await self.tracker.handle(message)
        self.outcomes[outcome.action] += 1

    async def _on_error(self, message: InboundMessage, exc: BaseException) -> None:
        await self.tracker.quarantine(message, exc)
        self.outcomes["quarantined"] += 1

    # -- mailboxes ---------------------------------------------------------------------------

    async def _plans(self) -> dict[int, _Plan]:
        plans: dict[int, _Plan] = {}
        async with self.db.transaction() as s:
            for mailbox in await watched_mailboxes(s):
                try:
                    connection = connection_for(mailbox, self.secrets, self.options.timeout)
                except CadenceError as exc:  # a secret this key cannot decrypt
                    log.error("mailbox %s cannot be watched: %s", mailbox.address, exc)
                    continue
                folders = tuple(mailbox.watch_folders or ())
                plans[mailbox.id] = _Plan(
                    mailbox_id=mailbox.id,
                    address=mailbox.address,
                    connection=connection,
                    extra_folders=folders,
                    start_since=mailbox.created_at,
                    key=(
                        mailbox.imap_host, mailbox.imap_port, mailbox.imap_security,
                        mailbox.username, bytes(mailbox.secret), mailbox.ca_file, folders,
                    ),
                )  # fmt: skip
        return plans

    def _watcher(self, plan: _Plan) -> MailboxWatcher:
        o = self.options
        return MailboxWatcher(
            plan.mailbox_id,
            _connector(plan.connection),
            self.checkpoints,
            self._sink,
            self._on_error,
            extra_folders=plan.extra_folders,
            watch_junk=o.watch_junk,
            use_idle=o.use_idle,
            poll_interval=o.poll_interval,
            start_since=plan.start_since,  # type: ignore[arg-type]
            backoff=Backoff(base=o.backoff_base, cap=o.backoff_cap),
        )

    async def refresh(self) -> None:
        """Start watchers for new mailboxes, stop those paused or removed, restart changed."""
        plans = await self._plans()
        for mailbox_id in list(self._running):
            running = self._running[mailbox_id]
            plan = plans.get(mailbox_id)
            if plan is None or plan.key != running.plan.key:
                log.info(
                    "mailbox %s: watcher stopped (%s)",
                    running.plan.address,
                    "paused or removed" if plan is None else "settings changed",
                )
                await self._stop_one(mailbox_id)
        for mailbox_id, plan in plans.items():
            if mailbox_id not in self._running:
                watcher = self._watcher(plan)
                task = asyncio.ensure_future(watcher.run())
                self._running[mailbox_id] = _Running(plan, watcher, task)
                log.info("mailbox %s: watcher started", plan.address)

    async def _stop_one(self, mailbox_id: int) -> None:
        running = self._running.pop(mailbox_id)
        running.watcher.stop()
        try:
            await asyncio.wait_for(asyncio.shield(running.task), 10)
        except (TimeoutError, Exception):
            running.task.cancel()
            with contextlib.suppress(BaseException):
                await running.task
        self.checkpoints.forget(mailbox_id)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    await self.refresh()
                except Exception:  # the store is unreachable: keep the watchers we have
                    log.exception("could not re-read the mailbox list")
                self.started.set()
                self._rescan.clear()
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._rescan.wait()),
                ]
                await asyncio.wait(
                    waiters,
                    timeout=self.options.rescan_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for w in waiters:
                    w.cancel()
        finally:
            await asyncio.gather(
                *(self._stop_one(m) for m in list(self._running)), return_exceptions=True
            )

    async def wait_caught_up(self, timeout: float | None = None) -> bool:
        """Wait until every watcher has finished its first sync (or is failing and backing
        off, which says the server is unreachable, not that it is behind)."""
        deadline = time.monotonic() + (
            self.options.catch_up_timeout if timeout is None else timeout
        )
        while True:
            pending = [
                r for r in self._running.values()
                if r.watcher.health.last_sync_at is None
                and r.watcher.state not in ("backoff", "stopped")
            ]  # fmt: skip
            if not pending:
                return True
            if time.monotonic() >= deadline:
                log.warning("%d mailboxes not caught up yet; sending anyway", len(pending))
                return False
            await asyncio.sleep(0.05)

    async def sync_all_once(self, concurrency: int = 20) -> dict[int, str | None]:
        """One catch-up sync of every watched mailbox; returns each mailbox's error or None."""
        plans = await self._plans()
        gate = asyncio.Semaphore(concurrency)
        results: dict[int, str | None] = {}

        async def one(plan: _Plan) -> None:
            async with gate:
                try:
                    await self._watcher(plan).sync_once()
                    results[plan.mailbox_id] = None
                except (CadenceError, OSError, ValueError) as exc:
                    log.warning("mailbox %s: catch-up failed: %s", plan.address, exc)
                    results[plan.mailbox_id] = str(exc)

        await asyncio.gather(*(one(p) for p in plans.values()))
        return results


@dataclass
class WorkersReport:
    sender: PassReport
    synced: dict[int, str | None] = field(default_factory=dict)
    inbound: Counter[str] = field(default_factory=Counter)
    webhooks: DispatchReport | None = None


async def run_workers(
    runtime: Runtime,
    clock: Clock,
    stop: asyncio.Event | None = None,
    *,
    once: bool = False,
    service: WatcherService | None = None,
    reply_policy: ReplyPolicy | None = None,
    watch_options: WatchOptions | None = None,
    send_policy: SendPolicy | None = None,
    transport_factory: TransportFactory = LiveTransport,
    dispatcher: WebhookDispatcher | None = None,
) -> WorkersReport:
    """The worker: mailbox watchers, the sender and webhook delivery, until ``stop`` is set
    (SIGTERM / SIGINT set it).  With ``once``: catch every mailbox up, one sending pass, one
    webhook delivery pass, then return.

    ``cadence serve`` passes its own ``stop`` and, to show ``service.health()``, its own
    ``service`` (built with the same ``dispatcher``)."""
    stop = stop or asyncio.Event()
    dispatcher = (
        dispatcher
        or (service.dispatcher if service else None)
        or WebhookDispatcher(runtime.db, runtime.secrets)
    )
    service = service or WatcherService(
        runtime.db,
        runtime.secrets,
        clock,
        policy=reply_policy,
        options=watch_options,
        dispatcher=dispatcher,
    )
    if once:
        synced = await service.sync_all_once()
        report = await run_sender(
            runtime,
            clock,
            once=True,
            policy=send_policy,
            transport_factory=transport_factory,
            stop=stop,
        )
        hooks = await dispatcher.run_once()
        return WorkersReport(report, synced, service.outcomes, hooks)

    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    watching = asyncio.ensure_future(service.run(stop))
    delivering = asyncio.ensure_future(dispatcher.run(stop))
    try:
        started = asyncio.ensure_future(service.started.wait())
        await asyncio.wait({started, watching}, return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        await service.wait_caught_up()
        report = await run_sender(
            runtime, clock, policy=send_policy, transport_factory=transport_factory, stop=stop
        )
    finally:
        stop.set()
        await asyncio.gather(watching, delivering, return_exceptions=True)
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    return WorkersReport(report, {}, service.outcomes, None)
