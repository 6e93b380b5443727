"""Watch one mailbox over IMAP: an explicit state machine per mailbox.

States (``MailboxWatcher.state``)::

    connecting ──► syncing ──► idle ◄──────────────┐
        ▲             │  ▲       │ push / timeout    │
        │             │  └───────┘                   │
        │             └──► polling (no IDLE, or IDLE broke) ─┘ every poll_interval
        │
    backoff ◄── any failure (network, TLS, login, protocol): exponential with jitter, longer when
                the provider says it is throttling; then connecting again.

``syncing`` visits every watched folder (INBOX, Junk, and folders the user added) and catches
up from the checkpoint — (UIDVALIDITY, last UID seen) per folder, kept in the store by the
``CheckpointStore`` — so mail that arrived while Cadence was stopped is processed at start.
``idle`` waits on INBOX with IDLE and returns to ``syncing`` the moment the server announces
anything, without debouncing: a reply seconds after another, or right after Cadence sent from
the mailbox, is seen as fast as an isolated one.  The other folders are re-checked at least
every ``poll_interval``.

UIDVALIDITY change: the old UIDs mean nothing any more.  The folder is re-read from a few days
before the last checkpoint with ``resync=True``; the sink deduplicates by Message-ID, so old
mail is never treated as new.

A message is handed to the sink once, in UID order; the checkpoint advances after the sink
returns.  A sink that raises gets ``on_error`` (which quarantines the message) and the watcher
goes on: one malformed message never stops a mailbox.  No database session is held across IMAP
I/O: the sink and the store open their own short transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from cadence.errors import CadenceError
from cadence.mail.imap import ImapSession

log = logging.getLogger("cadence.watcher")

# RFC 2177 section 3: a server may log out a client idle for 30 minutes; restart IDLE before.
IDLE_RESTART_S = 25 * 60
# How much of a message is fetched for classification: bounces and replies fit; a huge
# attachment does not need to be read.
FETCH_LIMIT_BYTES = 256 * 1024
FETCH_BATCH = 25
RESYNC_LOOKBACK = dt.timedelta(days=3)


@dataclass(frozen=True)
class FolderCheckpoint:
    uidvalidity: int
    last_uid: int
    synced_at: dt.datetime | None = None


class CheckpointStore(Protocol):
    async def load(self, mailbox_id: int, folder: str) -> FolderCheckpoint | None: ...

    async def save(self, mailbox_id: int, folder: str, checkpoint: FolderCheckpoint) -> None: ...


@dataclass(frozen=True)
class InboundMessage:
    mailbox_id: int
    folder: str
    uid: int
    uidvalidity: int
    raw: bytes  # at most FETCH_LIMIT_BYTES; ``truncated`` says when the message was longer
    size: int | None
    truncated: bool
    resync: bool = False  # seen again after a UIDVALIDITY reset: dedupe by Message-ID


Sink = Callable[[InboundMessage], Awaitable[None]]
ErrorSink = Callable[[InboundMessage, BaseException], Awaitable[None]]


@dataclass
class Backoff:
    """Exponential backoff with full jitter; ``throttled`` starts from a long wait."""

    base: float = 1.0
    cap: float = 300.0
    attempt: int = 0

    def next(self, throttled: bool = False) -> float:
        self.attempt += 1
        ceiling = min(self.cap, self.base * (2 ** min(self.attempt, 16)))
        if throttled:
            ceiling = max(ceiling, 60.0)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


_THROTTLE_WORDS = ("THROTTLED", "[LIMIT]", "TOO MANY", "[UNAVAILABLE]", "RATE", "TRY AGAIN LATER")


def is_throttling(error: BaseException) -> bool:
    text = str(getattr(error, "server_reply", "") or error).upper()
    return any(word in text for word in _THROTTLE_WORDS)


@dataclass
class WatcherHealth:
    state: str = "stopped"
    since: float = field(default_factory=time.monotonic)
    last_error: str | None = None
    last_error_code: str | None = None
    messages_seen: int = 0
    reconnects: int = 0
    last_sync_at: float | None = None


class MailboxWatcher:
    def __init__(
        self,
        mailbox_id: int,
        connect: Callable[[], Awaitable[ImapSession]],
        checkpoints: CheckpointStore,
        sink: Sink,
        on_error: ErrorSink,
        *,
        extra_folders: tuple[str, ...] = (),
        watch_junk: bool = True,
        use_idle: bool = True,
        poll_interval: float = 60.0,
        idle_restart: float = IDLE_RESTART_S,
        start_since: dt.datetime | None = None,
        fetch_limit: int = FETCH_LIMIT_BYTES,
        backoff: Backoff | None = None,
    ) -> None:
        self.mailbox_id = mailbox_id
        self._connect = connect
        self._checkpoints = checkpoints
        self._sink = sink
        self._on_error = on_error
        self.extra_folders = extra_folders
        self.watch_junk = watch_junk
        self.use_idle = use_idle
        self.poll_interval = poll_interval
        self.idle_restart = idle_restart
        self.start_since = start_since
        self.fetch_limit = fetch_limit
        self.backoff = backoff or Backoff()
        self.health = WatcherHealth()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._session: ImapSession | None = None

    @property
    def state(self) -> str:
        return self.health.state

    def _set_state(self, state: str) -> None:
        if state != self.health.state:
            log.debug("mailbox %s: %s -> %s", self.mailbox_id, self.health.state, state)
            self.health.state = state
            self.health.since = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()  # ends an IDLE cleanly

    def wake(self) -> None:
        """Ask for a sync now (e.g. right after Cadence sent from this mailbox)."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            session: ImapSession | None = None
            try:
                self._set_state("connecting")
                session = await self._connect()
                self._session = session
                await self._watch(session)
            except asyncio.CancelledError:
                raise
            except (CadenceError, OSError, ValueError) as exc:
                if self._stop.is_set():
                    break
                throttled = is_throttling(exc)
                delay = self.backoff.next(throttled)
                self.health.last_error = str(exc)
                self.health.last_error_code = getattr(exc, "code", type(exc).__name__)
                self.health.reconnects += 1
                log.warning(
                    "mailbox %s: %s; reconnecting in %.1fs%s",
                    self.mailbox_id,
                    exc,
                    delay,
                    " (throttled)" if throttled else "",
                )
                self._set_state("backoff")
                await self._sleep(delay)
            finally:
                self._session = None
                if session is not None:
                    session.close()
        self._set_state("stopped")

    async def sync_once(self) -> None:
        """Connect, catch every watched folder up from its checkpoint, log out: what
        ``cadence run --once`` does before sending, so a reply that arrived while Cadence was
        stopped is acted on before the next step could go.  Raises on failure."""
        self._set_state("connecting")
        session = await self._connect()
        try:
            self._set_state("syncing")
            for folder in await self._folders(session):
                await self._sync_folder(session, folder)
            self.health.last_sync_at = time.time()
        finally:
            await session.logout()
            self._set_state("stopped")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _watch(self, session: ImapSession) -> None:
        folders = await self._folders(session)
        last_full_sync = 0.0
        first = True
        while not self._stop.is_set():
            self._set_state("syncing")
            now = time.monotonic()
            if first or now - last_full_sync >= self.poll_interval:
                for folder in folders[1:]:
                    await self._sync_folder(session, folder)
                last_full_sync = now
            await self._sync_folder(session, folders[0])  # INBOX last: IDLE runs on it
            self.health.last_sync_at = time.time()
            if first:
                self.backoff.reset()  # connected and caught up: the next failure starts small
                first = False
            if self.use_idle and session.has("IDLE"):
                self._set_state("idle")
                wait = min(self.idle_restart, max(1.0, self.poll_interval))
                if len(folders) == 1:
                    wait = self.idle_restart
                self._wake.clear()
                await session.idle(wait, interrupt=self._wake)
            else:
                self._set_state("polling")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)

    async def _folders(self, session: ImapSession) -> list[str]:
        folders = ["INBOX"]
        listing = await session.list_folders()
        if self.watch_junk:
            junk = await session.find_special_folder("\\Junk", listing)
            if junk is not None and junk.name.upper() != "INBOX":
                folders.append(junk.name)
        names = {f.name for f in listing}
        for extra in self.extra_folders:
            if extra in names and extra not in folders:
                folders.append(extra)
        return folders

    async def _sync_folder(self, session: ImapSession, folder: str) -> None:
        status = await session.select(folder)
        if status.uidvalidity is None:
            raise CadenceError(f"{folder} has no UIDVALIDITY", code="imap_protocol_error")
        checkpoint = await self._checkpoints.load(self.mailbox_id, folder)
        resync = False
        if checkpoint is None:
            # First sight of this folder: mail from before the mailbox was connected is history,
            # not replies; mail since then is processed.
            if self.start_since is not None:
                uids = await session.uid_search("SINCE", _imap_date(self.start_since))
            else:
                uids = []
            last_uid = 0
        elif checkpoint.uidvalidity != status.uidvalidity:
            log.warning(
                "mailbox %s %s: UIDVALIDITY changed %s -> %s; resyncing by Message-ID",
                self.mailbox_id,
                folder,
                checkpoint.uidvalidity,
                status.uidvalidity,
            )
            since = (checkpoint.synced_at or dt.datetime.now(dt.UTC)) - RESYNC_LOOKBACK
            uids = await session.uid_search("SINCE", _imap_date(since))
            last_uid = 0
            resync = True
        else:
            last_uid = checkpoint.last_uid
            if status.uidnext is not None and status.uidnext <= last_uid + 1:
                return
            # "n:*" always includes the highest UID even when it is below n (RFC 3501 6.4.8).
            uids = [u for u in await session.uid_search("UID", f"{last_uid + 1}:*") if u > last_uid]
        uids.sort()
        if not uids:
            if checkpoint is None or resync:
                top = (status.uidnext or 1) - 1
                await self._save(folder, status.uidvalidity, top)
            return
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start : start + FETCH_BATCH]
            fetched = await session.uid_fetch(
                batch, f"(UID RFC822.SIZE BODY.PEEK[]<0.{self.fetch_limit}>)"
            )
            by_uid = {m.uid: m for m in fetched if m.uid is not None}
            for uid in batch:
                item = by_uid.get(uid)
                if item is None:
                    continue  # expunged meanwhile
                raw = next(iter(item.sections.values()), b"")
                message = InboundMessage(
                    mailbox_id=self.mailbox_id,
                    folder=folder,
                    uid=uid,
                    uidvalidity=status.uidvalidity,
                    raw=raw,
                    size=item.size,
                    truncated=item.size is not None and item.size > len(raw),
                    resync=resync,
                )
                await self._deliver(message)
                last_uid = max(last_uid, uid)
                await self._save(folder, status.uidvalidity, last_uid)
        if checkpoint is None or resync:
            await self._save(folder, status.uidvalidity, max(last_uid, (status.uidnext or 1) - 1))

    async def _deliver(self, message: InboundMessage) -> None:
        self.health.messages_seen += 1
        try:
            await self._sink(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bad message is quarantined, never fatal to the watcher
            log.exception(
                "mailbox %s: message %s/%s failed; quarantined",
                self.mailbox_id,
                message.folder,
                message.uid,
            )
            try:
                await self._on_error(message, exc)
            except Exception:
                log.exception("mailbox %s: quarantining failed", self.mailbox_id)

    async def _save(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        await self._checkpoints.save(
            self.mailbox_id,
            folder,
            FolderCheckpoint(uidvalidity, last_uid, dt.datetime.now(dt.UTC)),
        )


def _imap_date(when: dt.datetime) -> str:
    # RFC 3501 date: 26-Nov-2026 (English month abbreviations, whatever the locale).
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{when.day}-{months[when.month - 1]}-{when.year}"


class MemoryCheckpoints:
    """In-memory checkpoints, for tests and benchmarks."""

    def __init__(self) -> None:
        self.data: dict[tuple[int, str], FolderCheckpoint] = {}

    async def load(self, mailbox_id: int, folder: str) -> FolderCheckpoint | None:
        return self.data.get((mailbox_id, folder))

    async def save(self, mailbox_id: int, folder: str, checkpoint: FolderCheckpoint) -> None:
        self.data[(mailbox_id, folder)] = checkpoint
