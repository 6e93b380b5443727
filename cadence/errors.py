"""The error hierarchy shared by every layer.

Every failure a user can meet carries a stable ``code`` (scripts match on it), a one-line
``message`` and a ``hint`` saying how to fix it.  Errors that come from a server also carry
the server's reply, so a report can show exactly what the server said.
"""

from __future__ import annotations

from typing import Any


class CadenceError(Exception):
    """Base class: ``code`` is stable, ``message`` is one line, ``hint`` says what to do."""

    code: str = "error"
    hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        server_reply: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if hint is not None:
            self.hint = hint
        self.server_reply = server_reply
        self.detail: dict[str, Any] = dict(detail or {})

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.server_reply:
            out["server_reply"] = self.server_reply
        if self.detail:
            out["detail"] = self.detail
        return out


class UsageError(CadenceError):
    code = "usage"


class ConfigError(CadenceError):
    code = "config"


class ConnectError(CadenceError):
    """DNS, TCP or timeout failures before any protocol exchange."""

    code = "connect_failed"


class TLSError(CadenceError):
    """The TLS handshake failed or the certificate did not verify."""

    code = "tls_failed"


class InsecureConnectionError(CadenceError):
    """The server offers no encryption: refused before any credential is sent."""

    code = "insecure"


class ProtocolError(CadenceError):
    """The server answered something the protocol does not allow, or an unexpected NO/BAD."""

    code = "protocol_error"


class LoginError(CadenceError):
    code = "auth_failed"


class CapabilityError(CadenceError):
    """A capability Cadence requires (such as UIDPLUS) is missing."""

    code = "capability_missing"


class UnsupportedServerError(CadenceError):
    code = "server_unsupported"


class DeliveryError(CadenceError):
    """An SMTP transaction failed.  ``permanent`` is True for 5xx replies."""

    code = "smtp_delivery_failed"

    def __init__(
        self,
        message: str,
        *,
        smtp_code: int | None = None,
        enhanced: str | None = None,
        permanent: bool = False,
        recipients: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.smtp_code = smtp_code
        self.enhanced = enhanced
        self.permanent = permanent
        self.recipients = list(recipients or [])
