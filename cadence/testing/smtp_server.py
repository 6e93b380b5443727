"""An SMTP submission server for tests that delivers into the test Dovecot over LMTP.

Two listeners share one handler: submission with STARTTLS (587's role) and implicit TLS (465's
role).  AUTH PLAIN/LOGIN is checked against the Dovecot instance's users and only offered over
TLS.  Recipients on a domain the Dovecot serves are delivered into their mailbox; an unknown
user on such a domain is refused at RCPT with ``550 5.1.1``; other domains are accepted and kept
in ``relayed`` (nothing leaves the machine).

Knobs imitate real providers:

* ``file_sent_copy``: file a copy in the sender's Sent folder, as Gmail and Microsoft 365 do;
* ``rewrite_message_id``: answer DATA with ``250 2.0.0 OK <new-id>`` and put that Message-ID on
  the delivered copies, as Microsoft 365 does;
* ``fault``: a callable ``(stage, value) -> str | None`` that may return an SMTP reply such as
  ``"451 4.3.0 try later"`` to inject a failure at ``"MAIL"``, ``"RCPT"`` or ``"DATA"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from cadence.testing.certs import CertPair
from cadence.testing.dovecot import DovecotServer, free_port

Fault = Callable[[str, str], str | None]


@dataclass
class AcceptedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    queue_id: str


@dataclass
class DeliveringHandler:
    dovecot: DovecotServer
    file_sent_copy: bool = False
    rewrite_message_id: bool = False
    fault: Fault | None = None
    accepted: list[AcceptedMessage] = field(default_factory=list)
    relayed: list[AcceptedMessage] = field(default_factory=list)

    def _local_domains(self) -> set[str]:
        return {u.rsplit("@", 1)[-1].lower() for u in self.dovecot.users}

    def _is_local_user(self, address: str) -> bool:
        base = address.lower()
        local, _, domain = base.rpartition("@")
        local = local.split("+", 1)[0]
        return f"{local}@{domain}" in {u.lower() for u in self.dovecot.users}

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.fault and (reply := self.fault("MAIL", address)):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.fault and (reply := self.fault("RCPT", address)):
            return reply
        domain = address.rpartition("@")[2].lower()
        if domain in self._local_domains() and not self._is_local_user(address):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        if self.fault and (reply := self.fault("DATA", data.decode("utf-8", "replace"))):
            return reply
        queue_id = uuid.uuid4().hex[:12].upper()
        reply = f"250 2.0.0 OK queued as {queue_id}"
        if self.rewrite_message_id:
            new_id = f"<{uuid.uuid4().hex}@cadence-test.prod.outlook.com>"
            data = _replace_message_id(data, new_id)
            reply = f"250 2.0.0 OK {new_id} [Hostname=cadence-test.prod.outlook.com]"
        login = session.auth_data.login.decode() if session.auth_data else None
        message = AcceptedMessage(
            envelope.mail_from or "", list(envelope.rcpt_tos), data, login, queue_id
        )
        self.accepted.append(message)
        local = [r for r in envelope.rcpt_tos if self._is_local_user(r)]
        if len(local) != len(envelope.rcpt_tos):
            self.relayed.append(message)
        targets = list(local)
        if self.file_sent_copy and login and self._is_local_user(login):
            user, _, domain = login.partition("@")
            targets.append(f"{user}+Sent@{domain}")
        loop = asyncio.get_running_loop()
        for rcpt in targets:
            await loop.run_in_executor(
                None, self.dovecot.deliver, rcpt, data, envelope.mail_from or ""
            )
        return reply


def _replace_message_id(data: bytes, new_id: str) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = [
        line for line in head.split(b"\r\n") if not line.lower().startswith(b"message-id:")
    ]
    lines.append(b"Message-ID: " + new_id.encode())
    return b"\r\n".join(lines) + sep + body


def message_id_of(data: bytes) -> str | None:
    value = BytesHeaderParser().parsebytes(data).get("Message-ID")
    return str(value).strip() if value else None


class _Authenticator:
    def __init__(self, dovecot: DovecotServer) -> None:
        self.dovecot = dovecot
        # When set, every AUTH is refused with this reply, e.g. Microsoft 365's
        # "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled".
        self.refuse_with: str | None = None
        self.attempts = 0

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.attempts += 1
        if self.refuse_with:
            return AuthResult(success=False, handled=False, message=self.refuse_with)
        login = data.login.decode()
        ok = self.dovecot.users.get(login) == data.password.decode()
        # RFC 4954 section 6: 535 5.7.8 for bad credentials.
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


class _ImplicitTLSController(Controller):
    """aiosmtpd's Controller checks readiness with a plain socket; over TLS that needs the
    context to trust the test CA, which ``ssl_context`` for the server alone does not give."""

    def __init__(self, *args: Any, client_context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client_context = client_context

    def _trigger_server(self) -> None:
        import socket

        hostname = self.hostname or "127.0.0.1"
        with contextlib.ExitStack() as stack:
            s = stack.enter_context(socket.create_connection((hostname, self.port), 1.0))
            s = stack.enter_context(
                self._client_context.wrap_socket(s, server_hostname="localhost")
            )
            s.recv(1024)


@dataclass
class SMTPTestServer:
    dovecot: DovecotServer
    cert: CertPair
    ca_file: str
    host: str = "127.0.0.1"
    file_sent_copy: bool = False
    rewrite_message_id: bool = False
    # False: a badly configured server offering no STARTTLS (and AUTH in clear) on submission.
    offer_starttls: bool = True
    starttls_port: int = 0
    tls_port: int = 0
    handler: DeliveringHandler | None = None
    authenticator: _Authenticator | None = None
    _controllers: list[Controller] = field(default_factory=list)

    def start(self) -> SMTPTestServer:
        self.handler = DeliveringHandler(
            self.dovecot,
            file_sent_copy=self.file_sent_copy,
            rewrite_message_id=self.rewrite_message_id,
        )
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(self.cert.cert), str(self.cert.key))
        # Only the test server's own readiness probe uses this context; it must also work when
        # the server deliberately presents a bad certificate.  Cadence's client always verifies.
        client_ctx = ssl.create_default_context(cafile=self.ca_file)
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        self.authenticator = _Authenticator(self.dovecot)
        common: dict[str, Any] = {
            "authenticator": self.authenticator,
            "auth_require_tls": True,
            "hostname": self.host,
            "server_hostname": "smtp.cadence.test",
            "ident": "Cadence test ESMTP",
            "data_size_limit": 20 * 1024 * 1024,
        }
        self.starttls_port = free_port(self.host)
        if self.offer_starttls:
            submission = Controller(
                self.handler,
                port=self.starttls_port,
                tls_context=server_ctx,
                require_starttls=True,
                **common,
            )
        else:
            submission = Controller(
                self.handler, port=self.starttls_port, **{**common, "auth_require_tls": False}
            )
        self.tls_port = free_port(self.host)
        # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; this listener is TLS
        # from the first byte, so AUTH is safe to offer.
        implicit = _ImplicitTLSController(
            self.handler,
            port=self.tls_port,
            ssl_context=server_ctx,
            client_context=client_ctx,
            **{**common, "auth_require_tls": False},
        )
        for controller in (submission, implicit):
            controller.start()
            self._controllers.append(controller)
        return self

    def stop(self) -> None:
        for controller in self._controllers:
            with contextlib.suppress(Exception):
                controller.stop()
        self._controllers.clear()

    def __enter__(self) -> SMTPTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def accepted(self) -> list[AcceptedMessage]:
        assert self.handler is not None
        return self.handler.accepted

    def refuse_auth_with(self, reply: str | None) -> None:
        assert self.authenticator is not None
        self.authenticator.refuse_with = reply

    def set_fault(self, fault: Fault | None) -> None:
        assert self.handler is not None
        self.handler.fault = fault

