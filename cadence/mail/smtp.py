"""SMTP submission sessions on aiosmtplib: connect securely, log in, send one message.

    connect (implicit TLS on 465) ──► greeting ──► EHLO
    or connect ──► greeting ──► EHLO ──► STARTTLS ──► EHLO again (RFC 3207 4.2)
    ──► AUTH (PLAIN / LOGIN / XOAUTH2) ──► MAIL / RCPT / DATA

A server that offers no STARTTLS is refused (``smtp_insecure``) before any credential is sent.
Replies are turned into data at this boundary: a failed transaction raises
:class:`cadence.errors.DeliveryError` with the reply code, the enhanced status code (RFC 3463)
and whether it is permanent (5xx) — policy (retry, bounce) is the engine's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from cadence.errors import (
    ConnectError,
    DeliveryError,
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

log = logging.getLogger("cadence.smtp")

_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
# Microsoft 365 answers DATA with "2.0.0 OK <new-message-id> [Hostname=...]".
_PROVIDER_ID = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")


@dataclass(frozen=True)
class SendResult:
    code: int
    message: str
    enhanced: str | None
    provider_message_id: str | None  # set when the server says it gave the message a new id
    refused: dict[str, tuple[int, str]]  # recipients refused at RCPT while others were accepted


def enhanced_status(text: str) -> str | None:
    m = _ENHANCED.match(text.strip())
    return m.group(1) if m else None


class SmtpSession:
    """One connected SMTP session.  Create it with :func:`connect_smtp`."""

    def __init__(
        self, endpoint: Endpoint, options: ConnectOptions, client: aiosmtplib.SMTP, greeting: str
    ) -> None:
        self.endpoint = endpoint
        self.options = options
        self._client = client
        self.greeting = greeting
        self.tls: TLSInfo | None = None
        self.starttls_used = False
        self.pre_tls_extensions: dict[str, str] | None = None
        self.local_address: str | None = None
        self.peer_address: str | None = None
        self._update_addresses()

    def _update_addresses(self) -> None:
        transport = self._client.transport
        if transport is None:
            return
        sock = transport.get_extra_info("sockname")
        peer = transport.get_extra_info("peername")
        self.local_address = str(sock[0]) if sock else None
        self.peer_address = str(peer[0]) if peer else None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.tls = TLSInfo.from_ssl_object(ssl_object)

    @property
    def extensions(self) -> dict[str, str]:
        return {k.upper(): v for k, v in self._client.esmtp_extensions.items()}

    @property
    def auth_mechanisms(self) -> list[str]:
        return sorted(m.upper() for m in self._client.server_auth_methods)

    @property
    def size_limit(self) -> int | None:
        """RFC 1870 SIZE: the largest message the server accepts, if it says (0: no limit)."""
        value = self.extensions.get("SIZE")
        return int(value) if value and value.strip().isdigit() else None

    async def login(self, credentials: Credentials) -> None:
        try:
            if credentials.oauth2_token:
                await self._client.auth_xoauth2(credentials.username, credentials.oauth2_token)
            else:
                if credentials.password is None:
                    raise LoginError("No password given", code="smtp_auth_failed")
                await self._client.login(credentials.username, credentials.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise _auth_error(exc.code, exc.message, credentials.username) from exc
        except aiosmtplib.SMTPException as exc:
            if "no suitable authentication method" in str(exc).lower() or "auth" in str(
                exc
            ).lower():
                raise LoginError(
                    f"The SMTP server offers no authentication method Cadence can use "
                    f"(offered: {', '.join(self.auth_mechanisms) or 'none'})",
                    code="smtp_auth_failed",
                    hint="Enable AUTH PLAIN or LOGIN over TLS for SMTP submission.",
                    detail={"cause": "no_mechanism", "offered": self.auth_mechanisms},
                ) from exc
            raise _transport_error(exc, self.endpoint, self.options) from exc

    async def send(
        self, message: bytes, mail_from: str, rcpt_to: Sequence[str]
    ) -> SendResult:
        """One transaction.  Raises DeliveryError when the message was not accepted for
        every recipient it could be accepted for (all refused, or MAIL/DATA failed)."""
        try:
            response = await self._client.mail(mail_from)
        except aiosmtplib.SMTPResponseException as exc:
            raise _delivery_error("MAIL FROM", exc.code, exc.message, list(rcpt_to)) from exc
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in rcpt_to:
            try:
                await self._client.rcpt(rcpt)
            except aiosmtplib.SMTPResponseException as exc:
                refused[rcpt] = (exc.code, exc.message)
        if len(refused) == len(rcpt_to):
            await self._reset()
            code, text = next(iter(refused.values()))
            raise _delivery_error("RCPT TO", code, text, list(refused))
        try:
            response = await self._client.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            raise _delivery_error("DATA", exc.code, exc.message, list(rcpt_to)) from exc
        except aiosmtplib.SMTPException as exc:
            raise _transport_error(exc, self.endpoint, self.options) from exc
        m = _PROVIDER_ID.search(response.message)
        return SendResult(
            code=response.code,
            message=response.message,
            enhanced=enhanced_status(response.message),
            provider_message_id=f"<{m.group(1)}>" if m else None,
            refused=refused,
        )

    async def _reset(self) -> None:
        with contextlib.suppress(aiosmtplib.SMTPException):
            await self._client.rset()

    async def noop(self) -> None:
        await self._client.noop()

    async def quit(self) -> None:
        try:
            await asyncio.wait_for(self._client.quit(), min(self.options.timeout, 5.0))
        except Exception:  # a broken connection needs no goodbye
            self._client.close()

    def close(self) -> None:
        self._client.close()


async def connect_smtp(
    endpoint: Endpoint, options: ConnectOptions, local_hostname: str | None = None
) -> SmtpSession:
    """Open a secure SMTP submission session (not yet authenticated)."""
    sock = await open_socket(endpoint, options, "smtp")
    ctx: ssl.SSLContext = options.ssl_context()
    client = aiosmtplib.SMTP(
        hostname=endpoint.host,  # what the certificate is verified against
        sock=sock,
        use_tls=endpoint.security is Security.TLS,
        start_tls=False,  # Cadence upgrades itself, after checking the server offers it
        tls_context=ctx,
        timeout=options.timeout,
        local_hostname=local_hostname,
    )
    try:
        greeting = await client.connect()
    except aiosmtplib.SMTPConnectResponseError as exc:
        raise ConnectError(
            f"The SMTP server refused the session: {exc.code} {exc.message}",
            code="smtp_rejected",
            hint="The server may block this address (see the egress address in the report).",
            server_reply=f"{exc.code} {exc.message}",
        ) from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise _transport_error(exc, endpoint, options) from exc
    session = SmtpSession(endpoint, options, client, f"{greeting.code} {greeting.message}")
    try:
        await client.ehlo()
        if endpoint.security is Security.STARTTLS:
            session.pre_tls_extensions = session.extensions
            if not client.supports_extension("starttls"):
                raise InsecureConnectionError(
                    f"{endpoint.host}:{endpoint.port} offers SMTP without STARTTLS",
                    code="smtp_insecure",
                    hint=(
                        "Cadence never sends a password or mail in clear. Ask IT to enable "
                        "STARTTLS on submission (587), or use implicit TLS on port 465."
                    ),
                    detail={"extensions": sorted(session.extensions)},
                )
            try:
                await client.starttls(server_hostname=endpoint.host, tls_context=ctx)
            except aiosmtplib.SMTPResponseException as exc:
                raise ProtocolError(
                    f"The SMTP server refused STARTTLS: {exc.code} {exc.message}",
                    code="smtp_starttls_failed",
                    server_reply=f"{exc.code} {exc.message}",
                ) from exc
            session.starttls_used = True
            await client.ehlo()  # RFC 3207 4.2: forget what was learnt before TLS
        session._update_addresses()
        return session
    except aiosmtplib.SMTPException as exc:
        client.close()
        raise _transport_error(exc, endpoint, options) from exc
    except BaseException:
        client.close()
        raise


def _transport_error(
    exc: BaseException, endpoint: Endpoint, options: ConnectOptions
) -> Exception:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return tls_error(cause, endpoint.host, "smtp")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return ConnectError(
            f"{endpoint.host}:{endpoint.port} did not answer within {options.timeout:g}s",
            code="smtp_timeout",
            hint=(
                "The server accepted the connection but stalled, or a firewall drops it: "
                "check the port and ask IT to open it outbound."
            ),
        )
    if isinstance(exc, OSError):
        return connect_error(exc, endpoint, "smtp", options.timeout)
    inner = exc.__cause__ or exc.__context__
    if isinstance(inner, OSError):
        return connect_error(inner, endpoint, "smtp", options.timeout)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return ConnectError(
            f"{endpoint.host}:{endpoint.port} closed the connection: {exc}",
            code="smtp_connect_failed",
            hint="The server may not speak SMTP on this port, or refuses this address.",
        )
    return ProtocolError(f"SMTP error with {endpoint.host}: {exc}", code="smtp_protocol_error")


def _auth_error(code: int, text: str, username: str) -> LoginError:
    upper = text.upper()
    enhanced = enhanced_status(text)
    detail: dict[str, object] = {"reply_code": code, "enhanced": enhanced}
    # Microsoft 365: 5.7.139 "SmtpClientAuthentication is disabled for the Tenant/Mailbox";
    # 5.7.30 "Basic authentication is not supported for Client Submission".
    disabled = enhanced in ("5.7.139", "5.7.30") or any(
        s in upper
        for s in ("IS DISABLED", "NOT SUPPORTED", "APPLICATION-SPECIFIC PASSWORD", "WEB BROWSER")
    )
    if disabled:
        return LoginError(
            f"The SMTP server refused password login for {username}: this authentication "
            f"method is disabled ({code} {text})",
            code="smtp_auth_failed",
            hint=(
                "Enable authenticated SMTP (SMTP AUTH) for this mailbox, use an app password, "
                "or connect with OAuth2."
            ),
            server_reply=f"{code} {text}",
            detail={**detail, "cause": "method_disabled"},
        )
    if code == 454 or (enhanced or "").startswith("4."):
        return LoginError(
            f"The SMTP server could not authenticate {username} right now ({code} {text})",
            code="smtp_auth_unavailable",
            hint="A temporary server problem: try again later.",
            server_reply=f"{code} {text}",
            detail={**detail, "cause": "temporary"},
        )
    return LoginError(
        f"The SMTP server rejected the login for {username}: wrong user name or password "
        f"({code} {text})",
        code="smtp_auth_failed",
        hint="Check the user name (often the full email address) and the password.",
        server_reply=f"{code} {text}",
        detail={**detail, "cause": "bad_credentials"},
    )


def _delivery_error(stage: str, code: int, text: str, recipients: list[str]) -> DeliveryError:
    permanent = 500 <= code < 600
    return DeliveryError(
        f"The SMTP server refused {stage}: {code} {text}",
        code="smtp_rejected_permanent" if permanent else "smtp_rejected_temporary",
        hint=(
            "The server will not accept this message; see its reply."
            if permanent
            else "A temporary refusal: Cadence retries later."
        ),
        server_reply=f"{code} {text}",
        smtp_code=code,
        enhanced=enhanced_status(text),
        permanent=permanent,
        recipients=recipients,
        detail={"stage": stage},
    )
