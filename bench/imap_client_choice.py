"""Which IMAP client library: aioimaplib (asyncio) or IMAPClient in a thread?

Measured in one run against the same private Dovecot (implicit TLS, loopback):

1. latency of the work a check or a sync pass does — connect, TLS, login, SELECT, UID SEARCH,
   FETCH of 50 header sets, LOGOUT — repeated sequentially;
2. the cost of holding many sessions open at once, as a mailbox watcher must (one per watched
   mailbox): resident memory and threads per held session.

Usage: python bench/imap_client_choice.py [--rounds 20] [--sessions 300]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from imapclient import IMAPClient

from cadence.mail.endpoints import ConnectOptions, Credentials, Endpoint, Security
from cadence.mail.imap import ImapSession, connect_imap
from cadence.testing.certs import make_certificates
from cadence.testing.dovecot import DEFAULT_PASSWORD, MANY_SESSIONS, DovecotConfig, DovecotServer

USER = "bench@cadence.test"


def rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def aio_round(ep: Endpoint, opts: ConnectOptions) -> None:
    s = await connect_imap(ep, opts)
    await s.login(Credentials(USER, DEFAULT_PASSWORD))
    await s.select("INBOX")
    uids = await s.uid_search("ALL")
    await s.uid_fetch(uids[:50], "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID IN-REPLY-TO)])")
    await s.logout()


def sync_round(port: int, ctx: ssl.SSLContext) -> None:
    c = IMAPClient("localhost", port=port, ssl=True, ssl_context=ctx, timeout=20)
    c.login(USER, DEFAULT_PASSWORD)
    c.select_folder("INBOX")
    uids = c.search("ALL")
    c.fetch(uids[:50], ["UID", "FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID IN-REPLY-TO)]"])
    c.logout()


async def aio_hold(ep: Endpoint, opts: ConnectOptions, n: int) -> tuple[float, int]:
    gc.collect()
    before = rss_kb()
    sessions: list[ImapSession] = []
    sem = asyncio.Semaphore(20)

    async def one() -> None:
        async with sem:
            s = await connect_imap(ep, opts)
            await s.login(Credentials(USER, DEFAULT_PASSWORD))
            await s.select("INBOX")
            sessions.append(s)

    await asyncio.gather(*(one() for _ in range(n)))
    gc.collect()
    per = (rss_kb() - before) / n
    threads = threading.active_count()
    await asyncio.gather(*(s.logout() for s in sessions))
    return per, threads


def sync_hold(port: int, ctx: ssl.SSLContext, n: int) -> tuple[float, int]:
    """IMAPClient blocks: a watcher needs a thread per mailbox, waiting in idle_check()."""
    gc.collect()
    before = rss_kb()
    ready = threading.Barrier(n + 1)
    stop = threading.Event()

    def watcher() -> None:
        c = IMAPClient("localhost", port=port, ssl=True, ssl_context=ctx, timeout=60)
        c.login(USER, DEFAULT_PASSWORD)
        c.select_folder("INBOX")
        c.idle()
        ready.wait()
        while not stop.is_set():
            c.idle_check(timeout=0.5)
        c.idle_done()
        c.logout()

    threads = [threading.Thread(target=watcher, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    ready.wait(timeout=120)
    gc.collect()
    per = (rss_kb() - before) / n
    count = threading.active_count()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    return per, count


def child(kind: str, port: int, ca_file: str, n: int) -> None:
    """Each memory measurement runs in a fresh process: memory freed by one library would
    otherwise be reused by the other and flatter it."""
    if kind == "aio":
        ep = Endpoint("localhost", port, Security.TLS)
        per, threads = asyncio.run(aio_hold(ep, ConnectOptions(ca_file=ca_file), n))
    else:
        per, threads = sync_hold(port, ssl.create_default_context(cafile=ca_file), n)
    print(f"{per:.1f} {threads}")


def measure_hold(kind: str, port: int, ca_file: str, n: int) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--port", str(port), "--ca", ca_file,
         "--sessions", str(n)],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--child")
    parser.add_argument("--port", type=int)
    parser.add_argument("--ca")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.port, args.ca, args.sessions)
        return
    certs = make_certificates(Path(tempfile.mkdtemp(prefix="bench-certs-")))
    server = DovecotServer(DovecotConfig("bench", cert=certs.good, extra=MANY_SESSIONS))
    server.add_user(USER)
    server.start()
    try:
        for i in range(200):
            server.deliver(USER, f"Subject: m{i}\r\nMessage-ID: <m{i}@b>\r\n\r\nbody\r\n".encode())
        ep = Endpoint("localhost", server.imaps_port, Security.TLS)
        opts = ConnectOptions(ca_file=str(certs.ca_file))
        ctx = ssl.create_default_context(cafile=str(certs.ca_file))

        async def aio_rounds() -> list[float]:
            out = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                await aio_round(ep, opts)
                out.append(time.perf_counter() - t)
            return out

        aio_times = asyncio.run(aio_rounds())
        sync_times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            sync_round(server.imaps_port, ctx)
            sync_times.append(time.perf_counter() - t)
        # IMAPClient "in a thread" as an asyncio program would use it:
        async def threaded_rounds() -> list[float]:
            loop = asyncio.get_running_loop()
            out = []
            with ThreadPoolExecutor(4) as pool:
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    await loop.run_in_executor(pool, sync_round, server.imaps_port, ctx)
                    out.append(time.perf_counter() - t)
            return out

        thread_times = asyncio.run(threaded_rounds())
        a, s, th = (statistics.median(x) * 1000 for x in (aio_times, sync_times, thread_times))
        print(f"round trip (connect+TLS+login+select+search+fetch 50 headers+logout), "
              f"median of {args.rounds}:")
        print(f"  aioimaplib (Cadence session)   {a:7.1f} ms")
        print(f"  IMAPClient, blocking           {s:7.1f} ms   ratio {s / a:.2f}x")
        print(f"  IMAPClient via run_in_executor {th:7.1f} ms   ratio {th / a:.2f}x")
        aio_per, aio_threads = measure_hold("aio", server.imaps_port, str(certs.ca_file),
                                            args.sessions)
        sync_per, sync_threads = measure_hold("sync", server.imaps_port, str(certs.ca_file),
                                              args.sessions)
        print(f"holding {args.sessions} selected sessions open (a watcher's steady state):")
        print(f"  aioimaplib              {aio_per:6.1f} KB RSS/session, {aio_threads} threads")
        print(f"  IMAPClient + a thread   {sync_per:6.1f} KB RSS/session, {sync_threads} threads"
              f"   ratio {sync_per / max(aio_per, 0.1):.2f}x memory")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
