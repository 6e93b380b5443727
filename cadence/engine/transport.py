"""The mailbox's two connections as the sending engine uses them: SMTP to send, IMAP to look
for and file the Sent copy.  Opened lazily, reused for a pass, closed at its end.

Outcomes of a send are data (``Accepted`` / ``Rejected`` / ``NotSent`` / ``Ambiguous``): only
the engine decides what they mean for the enrollment.  ``Ambiguous`` is the case that matters
for exactly-once delivery: the connection broke after the message may have been handed over,
so the engine must look in the Sent folder before it ever sends it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from cadence.engine.mailboxes import MailboxConnection
from cadence.errors import CadenceError, DeliveryError, LoginError
from cadence.mail.imap import ImapSession, connect_imap
from cadence.mail.smtp import SendResult, SmtpSession, connect_smtp

log = logging.getLogger("cadence.sender")


@dataclass(frozen=True)
class Accepted:
    result: SendResult


@dataclass(frozen=True)
class Rejected:
    error: DeliveryError


@dataclass(frozen=True)
class NotSent:
    """Nothing was handed to the server (connect, TLS or login failed)."""

    error: CadenceError
    auth: bool


@dataclass(frozen=True)
class Ambiguous:
    """The transaction broke after it started: the server may or may not have accepted."""

    error: BaseException


Outcome = Accepted | Rejected | NotSent | Ambiguous


@dataclass(frozen=True)
class SentCopy:
    folder: str
    uidvalidity: int | None
    uid: int | None


class MailTransport(Protocol):
    async def send(self, raw: bytes, mail_from: str, rcpt_to: str) -> Outcome: ...

    async def find_sent(self, message_ids: list[str]) -> SentCopy | None: ...

    async def append_sent(self, raw: bytes) -> SentCopy: ...

    async def close(self) -> None: ...


class LiveTransport:
    """The real thing, over the protocol layer in ``cadence.mail``."""

    def __init__(self, connection: MailboxConnection) -> None:
        self.connection = connection
        self._smtp: SmtpSession | None = None
        self._imap: ImapSession | None = None
        self._sent_folder: str | None = None

    async def _smtp_session(self) -> SmtpSession:
        if self._smtp is None:
            session = await connect_smtp(self.connection.smtp, self.connection.options)
            try:
                await session.login(self.connection.credentials)
            except BaseException:
                session.close()
                raise
            self._smtp = session
        return self._smtp

    async def send(self, raw: bytes, mail_from: str, rcpt_to: str) -> Outcome:
        try:
            session = await self._smtp_session()
        except LoginError as exc:
            return NotSent(exc, auth=exc.code != "smtp_auth_unavailable")
        except CadenceError as exc:
            return NotSent(exc, auth=False)
        except OSError as exc:
            return NotSent(CadenceError(str(exc), code="smtp_connect_failed"), auth=False)
        try:
            return Accepted(await session.send(raw, mail_from, [rcpt_to]))
        except DeliveryError as exc:
            if exc.smtp_code is None:
                return Ambiguous(exc)
            return Rejected(exc)
        except Exception as exc:
            # Broken mid-transaction: the session cannot be trusted any more.
            self._drop_smtp()
            return Ambiguous(exc)

    def _drop_smtp(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def _imap_session(self) -> tuple[ImapSession, str]:
        if self._imap is None:
            session = await connect_imap(self.connection.imap, self.connection.options)
            try:
                await session.login(self.connection.credentials)
                folder = await session.find_special_folder("\\Sent")
            except BaseException:
                session.close()
                raise
            if folder is None:
                session.close()
                raise CadenceError(
                    f"{self.connection.address} has no Sent folder",
                    code="imap_no_sent_folder",
                    hint="create a folder named Sent (or mark one \\Sent) in the mailbox",
                )
            self._imap, self._sent_folder = session, folder.name
        assert self._sent_folder is not None
        return self._imap, self._sent_folder

    async def find_sent(self, message_ids: list[str]) -> SentCopy | None:
        session, folder = await self._imap_session()
        status = await session.select(folder)  # re-select: a fresh view of the folder
        for message_id in dict.fromkeys(m for m in message_ids if m):
            uids = await session.search_message_id(message_id)
            if uids:
                return SentCopy(folder, status.uidvalidity, min(uids))
        return None

    async def append_sent(self, raw: bytes) -> SentCopy:
        session, folder = await self._imap_session()
        # APPENDUID (RFC 4315 section 3) tells us where the copy went.
        session.require_capability("UIDPLUS")
        result = await session.append(folder, raw, flags=("\\Seen",))
        return SentCopy(folder, result.uidvalidity, result.uid)

    async def close(self) -> None:
        if self._smtp is not None:
            await self._smtp.quit()
            self._smtp = None
        if self._imap is not None:
            await self._imap.logout()
            self._imap = None
