"""How many mailboxes one process can watch, at what memory, CPU and reply latency.

Starts a private Dovecot tuned for thousands of sessions, creates N users, runs N
``MailboxWatcher``s (TLS, IDLE) in this process, then measures:

* resident memory per watched mailbox (RSS growth / N), against the process's baseline;
* CPU used while all watchers sit in IDLE (at rest), over a fixed window;
* latency from a message's LMTP delivery into Dovecot until the watcher hands it to the sink,
  for isolated messages to random mailboxes and for bursts to one mailbox (p50 / p95), against
  the floor: how long Dovecot itself takes to announce the message to an idling client.

Usage: python bench/watcher_scale.py --mailboxes 100 1000 [--messages 100]
(Above ~128 IDLE sessions Dovecot falls back to polling unless fs.inotify.max_user_instances is
raised; the test bed sets mailbox_idle_check_interval = 1s for that case, and this script tries
to raise the sysctl when it runs as root.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cadence.engine.mailbox_sync import InboundMessage, MailboxWatcher, MemoryCheckpoints
from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint, Security
from cadence.mail.imap import ImapSession, connect_imap
from cadence.testing.certs import make_certificates
from cadence.testing.dovecot import DEFAULT_PASSWORD, MANY_SESSIONS, DovecotConfig, DovecotServer


def rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def raise_inotify_limit() -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["sysctl", "-qw", "fs.inotify.max_user_instances=8192"],
                       check=False, capture_output=True, timeout=5)


async def floor_latency(server: DovecotServer, ca: str, user: str, n: int) -> list[float]:
    """Dovecot's own announce delay: a bare IDLE client, no watcher logic."""
    session = await connect_imap(Endpoint("localhost", server.imaps_port, Security.TLS),
                                 ConnectOptions(ca_file=ca))
    await session.login(Credentials(user, DEFAULT_PASSWORD))
    await session.select("INBOX")
    loop = asyncio.get_running_loop()
    out = []
    for i in range(n):
        idle = asyncio.ensure_future(session.idle(30))
        await asyncio.sleep(0.05)
        raw = f"Subject: floor {i}\r\nMessage-ID: <f{i}@b>\r\n\r\nx\r\n".encode()
        await loop.run_in_executor(None, server.deliver, user, raw)
        t0 = time.monotonic()
        await idle
        out.append(time.monotonic() - t0)
    await session.logout()
    return out


async def run_scale(n: int, messages: int, server: DovecotServer, ca: str) -> dict[str, float]:
    users = [f"w{n}-{i}@cadence.test" for i in range(n)]
    for user in users:
        server.add_user(user)
    endpoint = Endpoint("localhost", server.imaps_port, Security.TLS)
    options = ConnectOptions(ca_file=ca, timeout=60)
    gate = asyncio.Semaphore(40)  # do not storm the server with logins
    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Event] = {}

    def connector(user: str):  # type: ignore[no-untyped-def]
        async def connect() -> ImapSession:
            async with gate:
                session = await connect_imap(endpoint, options)
                await session.login(Credentials(user, DEFAULT_PASSWORD))
                return session
        return connect

    async def sink(item: InboundMessage) -> None:
        for line in item.raw.split(b"\r\n"):
            if line.startswith(b"Subject: "):
                key = line[9:].decode()
                arrived[key] = time.monotonic()
                if key in waiters:
                    waiters[key].set()

    async def on_error(item: InboundMessage, exc: BaseException) -> None:
        print("error", exc)

    base_rss = rss_kb()
    checkpoints = MemoryCheckpoints()
    watchers = [
        MailboxWatcher(i, connector(u), checkpoints, sink, on_error, watch_junk=False,
                       poll_interval=1800)
        for i, u in enumerate(users)
    ]
    tasks = [asyncio.ensure_future(w.run()) for w in watchers]
    started = time.monotonic()
    while sum(w.state == "idle" for w in watchers) < n:
        await asyncio.sleep(0.2)
        if time.monotonic() - started > 600:
            raise SystemExit(f"only {sum(w.state == 'idle' for w in watchers)} of {n} idle")
    ramp = time.monotonic() - started
    await asyncio.sleep(2)
    per_mailbox_kb = (rss_kb() - base_rss) / n
    cpu0, wall0 = cpu_s(), time.monotonic()
    await asyncio.sleep(10)
    cpu_rest = (cpu_s() - cpu0) / (time.monotonic() - wall0) * 100
    loop = asyncio.get_running_loop()

    async def one(user: str, key: str) -> float:
        waiters[key] = asyncio.Event()
        raw = f"Subject: {key}\r\nMessage-ID: <{key}@b>\r\n\r\nreply\r\n".encode()
        await loop.run_in_executor(None, server.deliver, user, raw)
        delivered = time.monotonic()
        await asyncio.wait_for(waiters[key].wait(), 60)
        return arrived[key] - delivered

    isolated = []
    for m in range(messages):
        isolated.append(await one(random.choice(users), f"iso-{n}-{m}"))
        await asyncio.sleep(0.05)
    burst = []
    for b in range(max(1, messages // 10)):
        user = random.choice(users)
        for k in range(3):  # three replies a second apart to the same mailbox
            burst.append(await one(user, f"burst-{n}-{b}-{k}"))
            await asyncio.sleep(1.0)
    for w in watchers:
        w.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "mailboxes": n,
        "ramp_s": ramp,
        "rss_per_mailbox_kb": per_mailbox_kb,
        "cpu_at_rest_pct": cpu_rest,
        "p50_ms": statistics.median(isolated) * 1000,
        "p95_ms": pct(isolated, 0.95) * 1000,
        "burst_p50_ms": statistics.median(burst) * 1000,
        "burst_p95_ms": pct(burst, 0.95) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--messages", type=int, default=100)
    args = parser.parse_args()
    raise_inotify_limit()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    certs = make_certificates(Path(tempfile.mkdtemp(prefix="bench-certs-")))
    server = DovecotServer(DovecotConfig("scale", cert=certs.good, extra=MANY_SESSIONS))
    server.add_user("floor@cadence.test")
    server.start()
    try:
        floor = asyncio.run(floor_latency(server, str(certs.ca_file), "floor@cadence.test", 20))
        print(f"floor (bare IDLE client, Dovecot's announce delay): "
              f"p50 {statistics.median(floor) * 1000:.0f} ms, p95 {pct(floor, 0.95) * 1000:.0f} ms")
        for n in args.mailboxes:
            r = asyncio.run(run_scale(n, args.messages, server, str(certs.ca_file)))
            print(
                f"{n:5d} mailboxes: ready in {r['ramp_s']:.1f}s, "
                f"{r['rss_per_mailbox_kb']:.1f} KB RSS/mailbox, CPU at rest "
                f"{r['cpu_at_rest_pct']:.2f}%, latency p50 {r['p50_ms']:.0f} ms / "
                f"p95 {r['p95_ms']:.0f} ms, bursts p50 {r['burst_p50_ms']:.0f} ms / "
                f"p95 {r['burst_p95_ms']:.0f} ms "
                f"(p95 / floor p95 = {r['p95_ms'] / (pct(floor, 0.95) * 1000):.2f})"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
