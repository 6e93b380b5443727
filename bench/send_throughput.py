"""Benchmark (b): 1,000 messages through the local SMTP test server, sent by Cadence's
sending engine, against a bare aiosmtplib loop over the same kind of connection (STARTTLS on
loopback, authenticated, one session), as a ratio.

    python bench/send_throughput.py [--n 1000] [--db sqlite|postgresql]

The engine does for each message what production does: lock the mailbox and the enrollment,
check window and pacing (limits set wide open here), render the templates, build the MIME
message, store the outbound row before the SMTP transaction, send it, commit the outcome, then
look for the Sent copy over IMAP and APPEND one (the test server does not file copies).  The
figures are printed with and without that Sent-copy step, which costs an IMAP round trip per
message.  Recipients are on a domain the test server only accepts (nothing is delivered), so
both loops measure the sender's side.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import tempfile
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from cadence.engine.cadences import apply_cadence, parse_cadence
from cadence.engine.enrollments import enroll
from cadence.engine.mailboxes import MailboxSpec, save_mailbox
from cadence.engine.prospects import import_prospects, parse_csv
from cadence.engine.sending import SendingEngine, SendPolicy
from cadence.engine.transport import LiveTransport, SentCopy
from cadence.mail.endpoints import Endpoint, Security
from cadence.store.db import open_database
from cadence.store.secrets import SecretBox
from cadence.testing.certs import make_certificates
from cadence.testing.dovecot import DEFAULT_PASSWORD, DovecotConfig, DovecotServer
from cadence.testing.smtp_server import SMTPTestServer

YAML = """\
name: bench
steps:
  - subject: "Quick question, {{ first_name }}"
    body: "Hi {{ first_name }},\\n\\nA short note about {{ company }}.\\n\\nRita"
    window: {days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}
"""


class NoSentCopy(LiveTransport):
    """The engine without step 4, to show what the IMAP Sent copy costs."""

    async def find_sent(self, message_ids: list[str]) -> SentCopy | None:
        return SentCopy("Sent", 1, 1)


async def bare_loop(host: str, port: int, ca: str, user: str, n: int) -> float:
    ctx = ssl.create_default_context(cafile=ca)
    client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, tls_context=ctx)
    t0 = time.perf_counter()
    await client.connect()
    await client.starttls(server_hostname=host, tls_context=ctx)
    await client.login(user, DEFAULT_PASSWORD)
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = user
        msg["To"] = f"p{i}@relay.test"
        msg["Subject"] = f"Quick question, P{i}"
        msg["Message-ID"] = f"<{uuid.uuid4().hex}@cadence.test>"
        msg.set_content(f"Hi P{i},\n\nA short note about Co{i}.\n\nRita\n")
        await client.send_message(msg)
    await client.quit()
    return time.perf_counter() - t0


async def engine_run(
    url: str,
    home: Path,
    rep: str,
    smtp_port: int,
    imap_port: int,
    ca: str,
    n: int,
    factory: type[LiveTransport],
) -> float:
    db = await open_database(url)
    box = SecretBox.from_settings(None, home)
    now = datetime.now(UTC)
    csv = "email,first_name,company\n" + "".join(
        f"p{i}-{uuid.uuid4().hex[:6]}@relay.test,P{i},Co{i}\n" for i in range(n)
    )
    rows, report = parse_csv(csv)
    async with db.transaction() as s:
        await save_mailbox(
            s,
            MailboxSpec(
                address=rep, username=rep, password=DEFAULT_PASSWORD,
                imap=Endpoint("localhost", imap_port, Security.TLS),
                smtp=Endpoint("localhost", smtp_port, Security.STARTTLS),
                ca_file=ca, daily_cap=1_000_000, min_gap_seconds=0, jitter_seconds=0,
            ),
            box,
        )  # fmt: skip
        await apply_cadence(s, parse_cadence(YAML))
        await import_prospects(s, rows, report)
        await enroll(s, cadence_name="bench", mailbox_address=rep, emails=None, now=now)
    engine = SendingEngine(
        db, box, lambda: datetime.now(UTC), transport_factory=factory, policy=SendPolicy()
    )
    t0 = time.perf_counter()
    result = await engine.run_pass()
    elapsed = time.perf_counter() - t0
    assert result.sent == n, result
    await db.close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cadence-bench-"))
    certs = make_certificates(tmp / "certs")
    dovecot = DovecotServer(DovecotConfig("bench", cert=certs.good))
    rep = "rep@cadence.test"
    dovecot.add_user(rep, DEFAULT_PASSWORD)
    dovecot.start()
    smtp = SMTPTestServer(dovecot, certs.good, str(certs.ca_file)).start()
    ca = str(certs.ca_file)
    try:
        bare = await bare_loop("localhost", smtp.starttls_port, ca, rep, args.n)
        results = {}
        for label, factory in (("engine", LiveTransport), ("engine, no Sent copy", NoSentCopy)):
            if args.db == "sqlite":
                url = f"sqlite+aiosqlite:///{tmp / (uuid.uuid4().hex + '.db')}"
                results[label] = await engine_run(
                    url, tmp, rep, smtp.starttls_port, dovecot.imaps_port, ca, args.n, factory
                )
            else:
                import asyncpg

                name = f"cadence_bench_{uuid.uuid4().hex[:8]}"
                admin = await asyncpg.connect(args.pg)
                await admin.execute(f'CREATE DATABASE "{name}"')
                try:
                    base = args.pg.rsplit("/", 1)[0].replace(
                        "postgresql://", "postgresql+asyncpg://"
                    )
                    results[label] = await engine_run(
                        f"{base}/{name}", tmp, rep, smtp.starttls_port, dovecot.imaps_port, ca,
                        args.n, factory,
                    )  # fmt: skip
                finally:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    await admin.close()
        print(f"{args.n} messages over STARTTLS to the local aiosmtpd test server ({args.db}):")
        print(f"  bare aiosmtplib loop : {bare:6.2f} s  ({args.n / bare:6.0f} msg/s)")
        for label, t in results.items():
            print(f"  {label:21}: {t:6.2f} s  ({args.n / t:6.0f} msg/s)  ratio {t / bare:.2f}x")
    finally:
        smtp.stop()
        dovecot.stop()


if __name__ == "__main__":
    asyncio.run(main())
