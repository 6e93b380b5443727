"""A small authoritative DNS server for tests: test zones on loopback, UDP and TCP.

    server = DnsTestServer().start()
    server.add("example.test", "MX", "10 mx.example.test.")
    server.add("mx.example.test", "A", "127.0.0.1")
    server.add("_imaps._tcp.example.test", "SRV", "0 1 10993 mail.cadence.test.")
    server.servfail("broken.test")          # answer SERVFAIL for this name
    server.delay("slow.test", 5.0)          # answer after five seconds
    ... Resolver("127.0.0.1:%d" % server.port) ...
    server.stop()

Every name not added answers NXDOMAIN; a name that exists without the asked type answers
NOERROR with no records (NODATA), as a real server does.  Messages are parsed and built with
dnspython.  The server runs its own asyncio loop in a thread, so synchronous tests, async tests
(each with their own loop) and CLI runs can all use one instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsTestServer) -> None:
        self.server = server
        self.tasks: set[asyncio.Task[None]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        wire = await self.server.answer(data)
        if wire is not None and self.server._udp is not None:
            self.server._udp.sendto(wire, addr)


def _key(name: str) -> str:
    return name.rstrip(".").lower()


@dataclass
class DnsTestServer:
    host: str = "127.0.0.1"
    port: int = 0
    ttl: int = 60
    records: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    servfail_names: set[str] = field(default_factory=set)
    delays: dict[str, float] = field(default_factory=dict)
    queries: list[tuple[str, str]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.AbstractServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- zone data ---------------------------------------------------------------------------

    def add(self, name: str, rdtype: str, *rdatas: str) -> DnsTestServer:
        with self._lock:
            self.records[(_key(name), rdtype.upper())].extend(rdatas)
        return self

    def remove(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self.records if k[0] == _key(name)]:
                del self.records[key]
            self.servfail_names.discard(_key(name))
            self.delays.pop(_key(name), None)

    def servfail(self, name: str) -> DnsTestServer:
        with self._lock:
            self.servfail_names.add(_key(name))
        return self

    def delay(self, name: str, seconds: float) -> DnsTestServer:
        with self._lock:
            self.delays[_key(name)] = seconds
        return self

    @property
    def address(self) -> str:
        """``host:port``: what ``--dns`` and ``CADENCE_DNS`` take."""
        return f"{self.host}:{self.port}"

    # -- answering ---------------------------------------------------------------------------

    def _lookup(self, name: str, rdtype: str) -> tuple[dns.rcode.Rcode, list[str], float]:
        key = _key(name)
        with self._lock:
            self.queries.append((key, rdtype))
            delay = self.delays.get(key, 0.0)
            if key in self.servfail_names:
                return dns.rcode.SERVFAIL, [], delay
            exists = any(k[0] == key for k in self.records)
            found = list(self.records.get((key, rdtype), []))
        if not exists:
            return dns.rcode.NXDOMAIN, [], delay
        return dns.rcode.NOERROR, found, delay

    async def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # garbage in: no answer, like a real server dropping it
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = question.name.to_text()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        rcode, rdatas, delay = self._lookup(name, rdtype)
        if delay:
            await asyncio.sleep(delay)
        response.set_rcode(rcode)
        if rdatas:
            response.answer.append(
                dns.rrset.from_text_list(question.name, self.ttl, "IN", rdtype, rdatas)
            )
        return response.to_wire()

    # -- serving -----------------------------------------------------------------------------

    def start(self) -> DnsTestServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=run, name="dns-test-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # UDP and TCP on the same port: retry if TCP's is taken
            udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp_sock.bind((self.host, self.port))
            port = udp_sock.getsockname()[1]
            try:
                self._tcp = await asyncio.start_server(self._tcp_client, self.host, port)
            except OSError:
                udp_sock.close()
                if self.port:
                    raise
                continue
            transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp_sock)
            self._udp = transport
            self.port = port
            return
        raise OSError("no free port for the DNS test server")

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                wire = await self.answer(await reader.readexactly(length))
                if wire is None:
                    break
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop = None
        self._thread = None

    def __enter__(self) -> DnsTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
