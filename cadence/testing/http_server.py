"""A small HTTP/HTTPS server for tests: canned answers by host name and path.

    server = HttpTestServer(tls=sni_context(ca)).start()       # https, any host name
    server.route("autoconfig.example.test", "/mail/config-v1.1.xml", Reply(body=xml))
    server.route("example.test", "/autodiscover/autodiscover.xml", handler)  # a callable
    server.route("slow.test", "/x", Reply(body=b"...", delay=30))           # a slow server
    ... fetch https://autoconfig.example.test:<server.port>/mail/config-v1.1.xml ...

Routes are chosen by the request's ``Host`` header (without the port) and path (without the
query); anything else answers 404.  Every request is kept in ``requests`` so tests can check
what was asked.  With ``tls=None`` it speaks plain http.  :func:`sni_context` gives a TLS
context that issues, from a trustme CA, a certificate for whatever name the client asks for
(SNI), so one server stands for any number of test domains.  The server runs its own asyncio
loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trustme

MAX_REQUEST_BYTES = 1024 * 1024


@dataclass
class Request:
    method: str
    path: str  # with the query string
    host: str  # from the Host header, without the port
    headers: dict[str, str]
    body: bytes

    @property
    def route_path(self) -> str:
        return self.path.split("?", 1)[0]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering: a slow server
    content_type: str = "text/xml; charset=utf-8"

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status=status, headers={"Location": location})


Handler = Callable[[Request], Reply | Awaitable[Reply]]

_REASONS = {200: "OK", 301: "Moved", 302: "Found", 307: "Temporary Redirect", 404: "Not Found"}


def sni_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server context that presents a certificate for the name the client sent (SNI)."""
    directory = Path(tempfile.mkdtemp(prefix="cadence-http-certs-"))
    contexts: dict[str, ssl.SSLContext] = {}
    lock = threading.Lock()

    def context_for(name: str) -> ssl.SSLContext:
        with lock:
            if name not in contexts:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                cert = ca.issue_cert(name)
                chain = directory / f"{name}.pem"
                with chain.open("wb") as fh:
                    for pem in cert.cert_chain_pems:
                        fh.write(pem.bytes())
                    fh.write(cert.private_key_pem.bytes())
                ctx.load_cert_chain(str(chain))
                contexts[name] = ctx
            return contexts[name]

    default = context_for("localhost")

    def pick(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if server_name:
            sslobj.context = context_for(server_name)

    default.sni_callback = pick
    return default


@dataclass
class HttpTestServer:
    tls: ssl.SSLContext | None = None  # None: plain http
    host: str = "127.0.0.1"
    port: int = 0
    routes: dict[tuple[str, str], Reply | Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None
    _thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def url(self, host: str, path: str) -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def route(self, host: str, path: str, reply: Reply | Handler) -> HttpTestServer:
        self.routes[(host.lower(), path)] = reply
        return self

    def clear(self) -> None:
        self.routes.clear()
        self.requests.clear()

    def requests_for(self, host: str) -> list[Request]:
        return [r for r in self.requests if r.host == host.lower()]

    # -- serving -----------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_REQUEST_BYTES:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(min(length, MAX_REQUEST_BYTES)) if length else b""
            host = headers.get("host", "").rsplit(":", 1)[0].lower() if headers.get("host") else ""
            if host.startswith("["):
                host = headers["host"].split("]")[0] + "]"
            request = Request(method, path, host, headers, body)
            self.requests.append(request)
            target = self.routes.get((host, request.route_path))
            if target is None:
                reply = Reply(status=404, body=b"not found", content_type="text/plain")
            elif isinstance(target, Reply):
                reply = target
            else:
                result = target(request)
                reply = await result if inspect.isawaitable(result) else result
            if reply.delay:
                # Wait, but notice a client that gives up (EOF): then there is nobody to answer.
                try:
                    if not await asyncio.wait_for(reader.read(1), reply.delay):
                        return
                except TimeoutError:
                    pass
            reason = _REASONS.get(reply.status, "Status")
            out_headers = {
                "Content-Type": reply.content_type,
                "Content-Length": str(len(reply.body)),
                "Connection": "close",
                **reply.headers,
            }
            writer.write(f"HTTP/1.1 {reply.status} {reason}\r\n".encode("latin-1"))
            for k, v in out_headers.items():
                writer.write(f"{k}: {v}\r\n".encode("latin-1"))
            writer.write(b"\r\n" + reply.body)
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            pass
        except ssl.SSLError:
            pass
        except asyncio.CancelledError:  # the server is stopping: end quietly
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def start(self) -> HttpTestServer:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop

            async def open_server() -> None:
                self._server = await asyncio.start_server(
                    self._client, self.host, self.port, ssl=self.tls, limit=MAX_REQUEST_BYTES
                )
                self.port = self._server.sockets[0].getsockname()[1]

            try:
                loop.run_until_complete(open_server())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            if self._server is not None:
                self._server.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="http-test-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop = None
        self._thread = None

    def __enter__(self) -> HttpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
