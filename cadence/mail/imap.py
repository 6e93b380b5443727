"""IMAP sessions: connect securely, read what the server is, and run the commands Cadence needs.

Built on aioimaplib's protocol object (asyncio, one coroutine per mailbox; see the note in
README on why this library was chosen), with the connection opened here so that Cadence
controls each step and reports each failure distinctly:

    TCP connect ──► TLS handshake (implicit TLS) ──► greeting ──► CAPABILITY
                    or greeting ──► CAPABILITY ──► STARTTLS ──► TLS handshake ──► CAPABILITY
    ──► LOGIN / AUTHENTICATE XOAUTH2 ──► CAPABILITY again (servers change it after login)

Nothing is sent in clear beyond CAPABILITY and STARTTLS: a server that offers no STARTTLS is
refused (``imap_insecure``) before any credential leaves this machine.  Server responses are
parsed here, once, into typed values.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aioimaplib import aioimaplib

from cadence.errors import (
    CapabilityError,
    ConnectError,
    InsecureConnectionError,
    LoginError,
    ProtocolError,
)
from cadence.mail.endpoints import (
    ConnectOptions,
    Credentials,
    Endpoint,
    Security,
    TLSInfo,
    connect_error,
    open_socket,
    tls_error,
)

log = logging.getLogger("cadence.imap")

_RESP_CODE = re.compile(rb"^\[(?P<code>[A-Z0-9-]+)(?: (?P<args>[^\]]*))?\]\s*(?P<text>.*)$", re.S)


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, keeping the greeting (it identifies the server) and reporting
    a lost connection to whoever waits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop, self._lost)
        self.greeting: asyncio.Future[bytes] = loop.create_future()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()

    def _lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if not self.greeting.done():
            self.greeting.set_exception(
                ConnectionResetError("the server closed the connection before its greeting")
            )
            self.greeting.exception()  # mark retrieved: nobody may be waiting any more

    async def welcome(self, command: bytes) -> None:  # called with the first line received
        async with self.state_condition:
            if command.startswith(b"* PREAUTH") or command.startswith(b"PREAUTH"):
                self.state = aioimaplib.AUTH
            elif command.startswith(b"* OK") or command.startswith(b"OK"):
                self.state = aioimaplib.NONAUTH
            else:
                self.state = aioimaplib.LOGOUT
            self.state_condition.notify_all()
        if not self.greeting.done():
            self.greeting.set_result(command)


@dataclass(frozen=True)
class Folder:
    name: str  # the name to use in commands (modified UTF-7 as the server sent it)
    display_name: str  # decoded for people
    flags: frozenset[str]
    delimiter: str | None

    def has_flag(self, flag: str) -> bool:
        return flag.lower() in {f.lower() for f in self.flags}


@dataclass(frozen=True)
class FolderStatus:
    name: str
    exists: int
    uidvalidity: int | None
    uidnext: int | None
    highestmodseq: int | None
    read_only: bool


@dataclass(frozen=True)
class AppendResult:
    uidvalidity: int | None
    uid: int | None


@dataclass
class FetchedMessage:
    seq: int
    uid: int | None = None
    flags: tuple[str, ...] = ()
    size: int | None = None
    internaldate: str | None = None
    sections: dict[str, bytes] = field(default_factory=dict)


# Folder names Cadence recognises when a server has no SPECIAL-USE (RFC 6154) flags.
USUAL_NAMES: dict[str, tuple[str, ...]] = {
    "\\Sent": (
        "Sent", "Sent Items", "Sent Messages", "Sent Mail", "[Gmail]/Sent Mail",
        "INBOX.Sent", "INBOX/Sent", "Gesendete Elemente", "Gesendet", "Éléments envoyés",
        "Elementos enviados", "Itens Enviados", "Posta inviata", "Verzonden items",
    ),
    "\\Junk": (
        "Junk", "Junk E-mail", "Junk Email", "Spam", "[Gmail]/Spam", "INBOX.Junk",
        "INBOX.Spam", "Junk-E-Mail", "Courrier indésirable", "Correo no deseado",
        "Lixo Eletrônico", "Posta indesiderata", "Ongewenste e-mail",
    ),
}


class ImapSession:
    """One connected IMAP session.  Create it with :func:`connect_imap`."""

    def __init__(
        self,
        endpoint: Endpoint,
        options: ConnectOptions,
        protocol: _Protocol,
        transport: asyncio.BaseTransport,
        greeting: str,
    ) -> None:
        self.endpoint = endpoint
        self.options = options
        self._protocol = protocol
        self._transport = transport
        self.greeting = greeting
        self.capabilities: frozenset[str] = frozenset()
        self.pre_login_capabilities: frozenset[str] = frozenset()
        self.pre_tls_capabilities: frozenset[str] | None = None  # STARTTLS endpoints only
        self.tls: TLSInfo | None = None
        self.starttls_used = False
        self.authenticated = False
        sock = transport.get_extra_info("sockname")
        peer = transport.get_extra_info("peername")
        self.local_address: str | None = str(sock[0]) if sock else None
        self.peer_address: str | None = str(peer[0]) if peer else None
        self.selected: FolderStatus | None = None

    # -- capabilities ------------------------------------------------------------------------

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    def require_capability(self, capability: str) -> None:
        """The one gate for optional server features."""
        if not self.has(capability):
            raise CapabilityError(
                f"The IMAP server does not advertise {capability}",
                code=f"imap_{capability.lower().replace('-', '_').replace('=', '_')}_missing",
                hint=f"Ask the mail server's administrator to enable {capability}.",
            )

    @property
    def auth_mechanisms(self) -> list[str]:
        caps = self.pre_login_capabilities or self.capabilities
        return sorted(c.split("=", 1)[1] for c in caps if c.startswith("AUTH="))

    async def refresh_capabilities(self) -> frozenset[str]:
        response = await self._run(aioimaplib.Command("CAPABILITY", self._tag(), loop=self._loop))
        caps: set[str] = set()
        for line in _untagged(response, b"CAPABILITY"):
            # Interned: a watcher holds a thousand sessions with the same few dozen names.
            caps.update(sys.intern(c.upper()) for c in line.decode("ascii", "replace").split())
        self.capabilities = frozenset(caps)
        self._protocol.capabilities = caps
        return self.capabilities

    # -- authentication ----------------------------------------------------------------------

    async def login(self, credentials: Credentials) -> None:
        """Log in (LOGIN, or AUTHENTICATE XOAUTH2 with a token), then re-read capabilities."""
        if self._protocol.state == aioimaplib.AUTH:
            self.authenticated = True
            await self.refresh_capabilities()
            return
        if credentials.oauth2_token:
            response = await self._xoauth2(credentials)
        else:
            if "LOGINDISABLED" in self.capabilities:
                raise LoginError(
                    "The IMAP server does not allow password login on this connection",
                    code="imap_login_disabled",
                    hint="The server requires TLS or another authentication method.",
                )
            if credentials.password is None:
                raise LoginError("No password given", code="imap_auth_failed")
            response = await self._run(
                aioimaplib.Command(
                    "LOGIN",
                    self._tag(),
                    aioimaplib.quoted(credentials.username),
                    aioimaplib.quoted(credentials.password),
                    loop=self._loop,
                ),
                scrub=credentials.password,
                check=False,
            )
        if response.result != "OK":
            raise _login_error(_text(response), credentials.username)
        self._protocol.state = aioimaplib.AUTH
        self.authenticated = True
        await self.refresh_capabilities()

    async def _xoauth2(self, credentials: Credentials) -> aioimaplib.Response:
        import base64

        assert credentials.oauth2_token is not None
        sasl = base64.b64encode(
            (
                f"user={credentials.username}\x01"
                f"auth=Bearer {credentials.oauth2_token}\x01\x01"
            ).encode()
        ).decode("ascii")
        return await self._run(
            aioimaplib.Command("AUTHENTICATE", self._tag(), "XOAUTH2", sasl, loop=self._loop),
            scrub=sasl,
            check=False,
        )

    async def id(self, **fields: str) -> dict[str, str] | None:
        """RFC 2971 ID: what the server says it is, or None when it does not support ID."""
        if not self.has("ID"):
            return None
        args = aioimaplib.arguments_rfs2971(**fields) if fields else ["NIL"]
        response = await self._run(aioimaplib.Command("ID", self._tag(), *args, loop=self._loop))
        for line in _untagged(response, b"ID"):
            return _parse_id(line)
        return {}

    # -- folders -----------------------------------------------------------------------------

    async def list_folders(self) -> list[Folder]:
        response = await self._run(
            aioimaplib.Command("LIST", self._tag(), '""', '"*"', loop=self._loop)
        )
        folders = []
        lines = _untagged(response, b"LIST")
        for i, line in enumerate(lines):
            parsed = _parse_list_line(line, lines[i + 1] if i + 1 < len(lines) else None)
            if parsed:
                folders.append(parsed)
        return folders

    async def find_special_folder(
        self, flag: str, folders: list[Folder] | None = None
    ) -> Folder | None:
        """A folder by its SPECIAL-USE flag (RFC 6154), else by its usual names."""
        folders = folders if folders is not None else await self.list_folders()
        for folder in folders:
            if folder.has_flag(flag):
                return folder
        wanted = [n.lower() for n in USUAL_NAMES.get(flag, ())]
        by_name = {f.display_name.lower(): f for f in folders}
        for name in wanted:
            if name in by_name:
                return by_name[name]
        return None

    async def select(self, folder: str = "INBOX", readonly: bool = False) -> FolderStatus:
        name = "EXAMINE" if readonly else "SELECT"
        response = await self._run(
            aioimaplib.Command(name, self._tag(), _quote_mailbox(folder), loop=self._loop)
        )
        self._protocol.state = aioimaplib.SELECTED
        status = _parse_select(folder, response)
        self.selected = status
        return status

    # -- messages ----------------------------------------------------------------------------

    async def uid_search(self, *criteria: str) -> list[int]:
        response = await self._run(
            aioimaplib.Command(
                "SEARCH", self._tag(), *criteria, prefix="UID", loop=self._loop
            )
        )
        uids: list[int] = []
        for line in _untagged(response, b"SEARCH"):
            uids.extend(int(x) for x in line.split() if x.isdigit())
        return uids

    async def search_message_id(self, message_id: str) -> list[int]:
        """UIDs of messages in the selected folder whose Message-ID header is ``message_id``."""
        return await self.uid_search("HEADER", "Message-ID", aioimaplib.quoted(message_id))

    async def uid_fetch(self, uids: Iterable[int] | str, items: str) -> list[FetchedMessage]:
        uid_set = uids if isinstance(uids, str) else _uid_set(uids)
        response = await self._run(
            aioimaplib.FetchCommand(self._tag(), uid_set, items, prefix="UID", loop=self._loop)
        )
        return _parse_fetch(response.lines)

    async def append(
        self,
        folder: str,
        message: bytes,
        flags: Iterable[str] = ("\\Seen",),
        date: Any = None,
    ) -> AppendResult:
        """APPEND a message; with UIDPLUS the server says the UID it got (APPENDUID)."""
        flag_text = " ".join(flags)
        response = await self._run_append(folder, message, flag_text, date)
        match = re.search(rb"\[APPENDUID (\d+) (\d+)\]", _last(response))
        if match and self.has("UIDPLUS"):
            return AppendResult(int(match.group(1)), int(match.group(2)))
        return AppendResult(None, None)

    async def _run_append(
        self, folder: str, message: bytes, flags: str, date: Any
    ) -> aioimaplib.Response:
        proto = self._protocol
        args = [_quote_mailbox(folder)]
        if flags:
            args.append(f"({flags})")
        if date is not None:
            args.append(aioimaplib.time2internaldate(date))
        args.append(f"{{{len(message)}}}")
        proto.literal_data = message
        return await self._run(aioimaplib.Command("APPEND", self._tag(), *args, loop=self._loop))

    async def uid_store(self, uids: Iterable[int], change: str, flags: str) -> None:
        await self._run(
            aioimaplib.Command(
                "STORE",
                self._tag(),
                _uid_set(uids),
                change,
                f"({flags})",
                prefix="UID",
                untagged_resp_name="FETCH",
                loop=self._loop,
            )
        )

    async def uid_expunge(self, uids: Iterable[int]) -> None:
        """Remove exactly these messages (RFC 4315 UID EXPUNGE): nothing else is touched."""
        self.require_capability("UIDPLUS")
        uid_list = list(uids)
        if not uid_list:
            return
        await self.uid_store(uid_list, "+FLAGS.SILENT", "\\Deleted")
        await self._run(
            aioimaplib.Command(
                "EXPUNGE", self._tag(), _uid_set(uid_list), prefix="UID", loop=self._loop
            )
        )

    async def idle(self, timeout: float, interrupt: asyncio.Event | None = None) -> list[bytes]:
        """RFC 2177 IDLE: wait until the server reports a change (or ``timeout``), then DONE.

        Returns the untagged lines the server pushed (``b"3 EXISTS"``, ...); an empty list
        means the timeout passed.  The caller re-issues IDLE at once after acting on a push:
        mail that arrives between DONE and the next IDLE is announced when IDLE starts again.
        RFC 2177 section 3: servers may drop an idle client after 30 minutes, so callers keep
        ``timeout`` under 29 minutes.  Setting ``interrupt`` ends IDLE early (cleanly, with DONE).
        """
        self.require_capability("IDLE")
        proto = self._protocol
        while not proto.idle_queue.empty():  # stale pushes from an earlier IDLE
            proto.idle_queue.get_nowait()
        idle_task = asyncio.ensure_future(proto.idle())
        ack = asyncio.ensure_future(proto.wait_for_idle_response())
        try:
            _done, _ = await asyncio.wait(
                {idle_task, ack, proto.lost},
                timeout=self.options.timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if proto.lost.done():
                raise ConnectError("The IMAP connection was lost", code="imap_connection_lost")
            if not ack.done():
                if idle_task.done() and not idle_task.cancelled():
                    response = idle_task.result()
                    raise ProtocolError(
                        f"The IMAP server refused IDLE: {_text(response)}",
                        code="imap_command_failed",
                        server_reply=_text(response),
                    )
                raise ConnectError("The IMAP server did not start IDLE", code="imap_timeout")
            pushed: list[bytes] = []
            getter = asyncio.ensure_future(proto.idle_queue.get())
            waiters: set[asyncio.Future[Any]] = {getter, proto.lost}
            interrupted = asyncio.ensure_future(interrupt.wait()) if interrupt else None
            if interrupted is not None:
                waiters.add(interrupted)
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if interrupted is not None:
                interrupted.cancel()
            if getter.done():
                pushed.extend(bytes(x) for x in getter.result())
            else:
                getter.cancel()
            if proto.lost.done():
                raise ConnectError("The IMAP connection was lost during IDLE",
                                   code="imap_connection_lost")
            proto.idle_done()
            # The server may close the connection instead of answering DONE (a "* BYE" push
            # when it is shut down or the session is kicked): notice that at once rather
            # than after the command timeout.
            await asyncio.wait({idle_task, proto.lost}, timeout=self.options.timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if not idle_task.done():
                if proto.lost.done():
                    raise ConnectError("The IMAP connection was lost during IDLE",
                                       code="imap_connection_lost")
                raise ConnectError("The IMAP server did not end IDLE", code="imap_timeout")
            idle_task.result()  # an aborted command raises here
            while not proto.idle_queue.empty():
                pushed.extend(bytes(x) for x in proto.idle_queue.get_nowait())
            return [line for line in pushed if line]
        finally:
            ack.cancel()
            if not idle_task.done():
                idle_task.cancel()

    @property
    def connection_lost(self) -> bool:
        return self._protocol.lost.done()

    async def noop(self) -> None:
        await self._run(aioimaplib.Command("NOOP", self._tag(), loop=self._loop))

    async def logout(self) -> None:
        try:
            await asyncio.wait_for(
                self._protocol.execute(aioimaplib.Command("LOGOUT", self._tag(), loop=self._loop)),
                min(self.options.timeout, 5.0),
            )
        except Exception:  # logging out of a broken connection is not worth an error
            pass
        finally:
            self.close()

    def close(self) -> None:
        self._protocol.transport.close()

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self._protocol.loop
        assert isinstance(loop, asyncio.AbstractEventLoop)
        return loop

    def _tag(self) -> str:
        tag = self._protocol.new_tag()
        assert isinstance(tag, str)
        return tag

    async def _run(
        self, command: aioimaplib.Command, *, scrub: str | None = None, check: bool = True
    ) -> aioimaplib.Response:
        try:
            response = await asyncio.wait_for(
                self._protocol.execute(command, scrub=scrub), self.options.timeout
            )
        except TimeoutError as exc:
            raise ConnectError(
                f"The IMAP server did not answer {command.name} within "
                f"{self.options.timeout:g}s",
                code="imap_timeout",
                hint="The server or the network is too slow; try again or raise --timeout.",
            ) from exc
        except aioimaplib.Abort as exc:
            raise ProtocolError(
                f"IMAP {command.name} aborted: {exc}", code="imap_protocol_error"
            ) from exc
        if check and response.result != "OK":
            raise ProtocolError(
                f"The IMAP server refused {command.name}: {_text(response)}",
                code="imap_command_failed",
                server_reply=_text(response),
            )
        return response


async def connect_imap(endpoint: Endpoint, options: ConnectOptions) -> ImapSession:
    """Open a secure IMAP session (not yet logged in) or raise a :class:`CadenceError`."""
    loop = asyncio.get_running_loop()
    sock = await open_socket(endpoint, options, "imap")
    protocol = _Protocol(loop)
    try:
        transport: asyncio.BaseTransport
        transport, _ = await loop.create_connection(lambda: protocol, sock=sock)
    except OSError as exc:
        sock.close()
        raise connect_error(exc, endpoint, "imap", options.timeout) from exc
    ctx = options.ssl_context()
    try:
        if endpoint.security is Security.TLS:
            transport = await _start_tls(loop, protocol, transport, ctx, endpoint, options)
        greeting = await _greeting(protocol, endpoint, options)
        session = ImapSession(endpoint, options, protocol, transport, greeting)
        if endpoint.security is Security.TLS:
            session.tls = TLSInfo.from_ssl_object(transport.get_extra_info("ssl_object"))
        await session.refresh_capabilities()
        if endpoint.security is Security.STARTTLS:
            session.pre_tls_capabilities = session.capabilities
            if "STARTTLS" not in session.capabilities:
                raise InsecureConnectionError(
                    f"{endpoint.host}:{endpoint.port} offers IMAP without encryption only",
                    code="imap_insecure",
                    hint=(
                        "Cadence never sends a password or mail in clear. Use IMAP over TLS on "
                        "port 993, or ask IT to enable STARTTLS."
                    ),
                    detail={"capabilities": sorted(session.capabilities)},
                )
            await session._run(aioimaplib.Command("STARTTLS", session._tag(), loop=loop))
            transport = await _start_tls(loop, protocol, transport, ctx, endpoint, options)
            session._transport = transport
            session.tls = TLSInfo.from_ssl_object(transport.get_extra_info("ssl_object"))
            session.starttls_used = True
            await session.refresh_capabilities()  # RFC 3501 6.2.1: discard what came before TLS
        session.pre_login_capabilities = session.capabilities
        if protocol.state == aioimaplib.AUTH:  # PREAUTH
            session.authenticated = True
        log.debug("connected to %s from %s", endpoint, session.local_address)
        return session
    except BaseException:
        transport.close()
        raise


async def _start_tls(
    loop: asyncio.AbstractEventLoop,
    protocol: _Protocol,
    transport: asyncio.BaseTransport,
    ctx: ssl.SSLContext,
    endpoint: Endpoint,
    options: ConnectOptions,
) -> asyncio.BaseTransport:
    try:
        new = await loop.start_tls(
            transport,  # type: ignore[arg-type]
            protocol,
            ctx,
            server_hostname=endpoint.host,
            ssl_handshake_timeout=options.timeout,
        )
    except ssl.SSLError as exc:
        raise tls_error(exc, endpoint.host, "imap") from exc
    except (TimeoutError, ConnectionError) as exc:
        raise ConnectError(
            f"{endpoint.host}:{endpoint.port} accepted the connection but did not complete "
            f"the TLS handshake within {options.timeout:g}s",
            code="imap_timeout",
            hint=(
                "Check that this port speaks TLS (993) and that no firewall or proxy is "
                "holding the connection."
            ),
        ) from exc
    assert new is not None
    protocol.transport = new
    return new


async def _greeting(protocol: _Protocol, endpoint: Endpoint, options: ConnectOptions) -> str:
    try:
        raw = await asyncio.wait_for(asyncio.shield(protocol.greeting), options.timeout)
    except TimeoutError as exc:
        raise ConnectError(
            f"{endpoint.host}:{endpoint.port} accepted the connection but sent no IMAP "
            f"greeting within {options.timeout:g}s",
            code="imap_timeout",
            hint="Something other than an IMAP server may be listening on this port.",
        ) from exc
    except ConnectionError as exc:
        raise ConnectError(
            f"{endpoint.host}:{endpoint.port} closed the connection before greeting",
            code="imap_connect_failed",
            hint="The server may be refusing this client's address; ask IT.",
        ) from exc
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("* "):
        text = text[2:]
    if text.upper().startswith("BYE"):
        raise ConnectError(
            f"The IMAP server refused the session: {text}",
            code="imap_rejected",
            hint="The server said BYE at once: it may block this address or be overloaded.",
            server_reply=text,
        )
    return text


# -- parsing (the boundary: bytes become typed values here) -----------------------------------


def _untagged(response: aioimaplib.Response, name: bytes) -> list[bytes]:
    """The untagged data lines of a response, without the tagged completion line.

    aioimaplib strips "* NAME " from the untagged lines of the commands it runs concurrently
    (CAPABILITY, LIST, SEARCH, ID, ...) and keeps it for the others; accept both."""
    out = []
    for line in response.lines[:-1]:
        data = bytes(line)
        if data.upper().startswith(name + b" "):
            data = data[len(name) + 1 :]
        elif data.upper() == name:
            data = b""
        out.append(data)
    return out


def _text(response: aioimaplib.Response) -> str:
    return _last(response).decode("utf-8", "replace").strip()


def _last(response: aioimaplib.Response) -> bytes:
    return bytes(response.lines[-1]) if response.lines else b""


def _login_error(text: str, username: str) -> LoginError:
    upper = text.upper()
    detail = {"server_reply": text}
    # RFC 5530 response codes say why; providers add [ALERT] texts for disabled methods.
    if any(s in upper for s in ("[AUTHENTICATIONFAILED]", "INVALID CREDENTIALS", "LOGIN FAILED")):
        return LoginError(
            f"The IMAP server rejected the login for {username}: wrong user name or password",
            code="imap_auth_failed",
            hint="Check the user name (often the full email address) and the password.",
            server_reply=text,
            detail={**detail, "cause": "bad_credentials"},
        )
    if any(
        s in upper
        for s in (
            "APPLICATION-SPECIFIC PASSWORD", "APP PASSWORD", "WEB BROWSER", "IMAP ACCESS",
            "DISABLED", "NOT ENABLED", "[PRIVACYREQUIRED]", "[CONTACTADMIN]",
        )
    ):
        return LoginError(
            f"The IMAP server refused password login for {username}: {text}",
            code="imap_auth_failed",
            hint=(
                "This login method is disabled for the account: enable IMAP access, use an app "
                "password, or connect with OAuth2."
            ),
            server_reply=text,
            detail={**detail, "cause": "method_disabled"},
        )
    if "[UNAVAILABLE]" in upper:
        return LoginError(
            f"The IMAP server could not log in {username} right now: {text}",
            code="imap_auth_unavailable",
            hint="A temporary server problem: try again later.",
            server_reply=text,
            detail={**detail, "cause": "temporary"},
        )
    return LoginError(
        f"The IMAP server rejected the login for {username}: {text}",
        code="imap_auth_failed",
        hint="Check the user name and password; the server did not say more.",
        server_reply=text,
        detail={**detail, "cause": "unknown"},
    )


def _parse_id(data: bytes) -> dict[str, str]:
    tokens = re.findall(rb'"((?:[^"\\]|\\.)*)"|(NIL)', data)
    values = [t[0].decode("utf-8", "replace") if not t[1] else "" for t in tokens]
    return {values[i].lower(): values[i + 1] for i in range(0, len(values) - 1, 2)}


_LIST_RE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$')


def _parse_list_line(data: bytes, following: object) -> Folder | None:
    m = _LIST_RE.match(data.strip())
    if not m:
        return None
    flags = frozenset(m.group("flags").decode("ascii", "replace").split())
    delim_raw = m.group("delim")
    delimiter = None if delim_raw == b"NIL" else _unquote(delim_raw)
    raw_name = m.group("name").strip()
    if re.fullmatch(rb"\{\d+\}", raw_name) and isinstance(following, bytes | bytearray):
        name = bytes(following).decode("utf-8", "replace")
    else:
        name = _unquote(raw_name)
    return Folder(name=name, display_name=decode_mutf7(name), flags=flags, delimiter=delimiter)


def _unquote(raw: bytes) -> str:
    if raw.startswith(b'"') and raw.endswith(b'"'):
        raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
    return raw.decode("utf-8", "replace")


def _quote_mailbox(name: str) -> str:
    return str(aioimaplib.quoted(name if name.isascii() else encode_mutf7(name)))


def _parse_select(folder: str, response: aioimaplib.Response) -> FolderStatus:
    exists = 0
    values: dict[str, int] = {}
    for line in response.lines:
        if not isinstance(line, bytes | bytearray):
            continue
        line = bytes(line)
        m = re.match(rb"(\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
        for key in (b"UIDVALIDITY", b"UIDNEXT", b"HIGHESTMODSEQ"):
            m = re.search(rb"\[" + key + rb" (\d+)\]", line)
            if m:
                values[key.decode()] = int(m.group(1))
    read_only = b"[READ-ONLY]" in _last(response).upper()
    return FolderStatus(
        name=folder,
        exists=exists,
        uidvalidity=values.get("UIDVALIDITY"),
        uidnext=values.get("UIDNEXT"),
        highestmodseq=values.get("HIGHESTMODSEQ"),
        read_only=read_only,
    )


def _uid_set(uids: Iterable[int]) -> str:
    """Compress UIDs into an IMAP sequence set (RFC 3501 9: 1:3,7,9:10)."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("empty UID set")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


_FETCH_START = re.compile(rb"^(\d+) FETCH \((.*)$", re.S)
_ITEM = re.compile(
    rb'\s*(?P<key>UID|RFC822\.SIZE|FLAGS|INTERNALDATE|MODSEQ|[A-Z0-9.]+(?:\[[^\]]*\])?(?:<\d+>)?)'
    rb'\s+(?P<value>\d+|\([^)]*\)|"(?:[^"\\]|\\.)*"|NIL|\{\d+\})'
)


def _parse_fetch(lines: list[Any]) -> list[FetchedMessage]:
    """Parse FETCH responses as aioimaplib hands them: text lines, each literal as its own item."""
    messages: list[FetchedMessage] = []
    current: FetchedMessage | None = None
    pending_literal: str | None = None
    for raw in lines:
        data = bytes(raw)
        if pending_literal is not None and current is not None:
            current.sections[pending_literal] = data
            pending_literal = None
            continue
        m = _FETCH_START.match(data)
        rest = data
        if m:
            current = FetchedMessage(seq=int(m.group(1)))
            messages.append(current)
            rest = m.group(2)
        if current is None:
            continue
        for item in _ITEM.finditer(rest):
            key = item.group("key").decode("ascii").upper()
            value = item.group("value")
            if value.startswith(b"{"):
                pending_literal = key
            elif key == "UID":
                current.uid = int(value)
            elif key == "RFC822.SIZE":
                current.size = int(value)
            elif key == "FLAGS":
                current.flags = tuple(value.strip(b"()").decode().split())
            elif key == "INTERNALDATE":
                current.internaldate = value.strip(b'"').decode()
            elif value.startswith(b'"'):
                current.sections[key] = value[1:-1]
    return messages


# -- modified UTF-7 for folder names (RFC 3501 section 5.1.3) ----------------------------------


def decode_mutf7(name: str) -> str:
    import base64

    def repl(m: re.Match[str]) -> str:
        chunk = m.group(1)
        if chunk == "":
            return "&"
        b64 = chunk.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        try:
            return base64.b64decode(b64).decode("utf-16-be")
        except Exception:
            return m.group(0)

    return re.sub(r"&([A-Za-z0-9+,]*)-", repl, name)


def encode_mutf7(name: str) -> str:
    import base64

    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            b64 = base64.b64encode("".join(buf).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)
