"""The store: migrations, UTC round-trips, constraints, secrets at rest."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from cadence.errors import ConfigError
from cadence.store.db import Database, open_database
from cadence.store.models import (
    Cadence,
    Enrollment,
    Mailbox,
    OutboundMessage,
    Prospect,
    Step,
)
from cadence.store.repositories import EnrollmentRepository, MailboxRepository
from cadence.store.secrets import KEY_FILE_NAME, Secret, SecretBox


def _mailbox(box: SecretBox, address: str = "rep@cadence.test") -> Mailbox:
    return Mailbox(
        address=address,
        username=address,
        secret=box.encrypt("hunter2"),
        imap_host="localhost",
        smtp_host="localhost",
    )


async def test_migrations_create_every_table_and_are_idempotent(db: Database) -> None:
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {
        "mailbox",
        "cadence",
        "step",
        "prospect",
        "enrollment",
        "outbound_message",
        "activity",
        "alembic_version",
    } <= tables
    # Opening again runs the upgrade again: a no-op at head.
    again = await open_database(str(db.engine.url.render_as_string(hide_password=False)))
    await again.close()


async def test_times_round_trip_as_aware_utc(db: Database, tmp_path: Path) -> None:
    box = SecretBox.from_settings(None, tmp_path)
    paris = timezone(timedelta(hours=1))
    due = datetime(2026, 3, 2, 10, 30, tzinfo=paris)
    async with db.transaction() as s:
        mb = await MailboxRepository(s).add(_mailbox(box))
        cad = Cadence(name="intro", steps=[Step(position=0, body="hi")])
        p = Prospect(email="p@x.test")
        s.add_all([cad, p])
        await s.flush()
        s.add(Enrollment(prospect_id=p.id, cadence_id=cad.id, mailbox_id=mb.id, next_due_at=due))
    async with db.transaction() as s:
        e = await s.scalar(select(Enrollment))
        assert e is not None and e.next_due_at is not None
        assert e.next_due_at.tzinfo is not None
        assert e.next_due_at == due
        assert e.next_due_at.utcoffset() == timedelta(0)
        # Due queries compare instants, not wall-clock strings.
        rows = await EnrollmentRepository(s).due(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
        assert [r.enrollment_id for r in rows] == [e.id]
        assert await EnrollmentRepository(s).due(datetime(2026, 3, 2, 9, 29, tzinfo=UTC)) == []


async def test_one_outbound_per_step_and_unique_message_ids(db: Database, tmp_path: Path) -> None:
    box = SecretBox.from_settings(None, tmp_path)
    async with db.transaction() as s:
        mb = await MailboxRepository(s).add(_mailbox(box))
        cad = Cadence(name="intro", steps=[Step(position=0, body="hi")])
        p = Prospect(email="p@x.test")
        s.add_all([cad, p])
        await s.flush()
        e = Enrollment(prospect_id=p.id, cadence_id=cad.id, mailbox_id=mb.id)
        s.add(e)
        await s.flush()
        ids = (mb.id, e.id)

    def outbound(mid: str) -> OutboundMessage:
        return OutboundMessage(
            enrollment_id=ids[1],
            mailbox_id=ids[0],
            step_position=0,
            message_id=mid,
            mail_from="rep@cadence.test",
            rcpt_to="p@x.test",
            raw=b"x",
        )

    async with db.transaction() as s:
        s.add(outbound("<a@cadence.test>"))
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(outbound("<b@cadence.test>"))  # same enrollment and step: refused


def test_secret_key_file_is_generated_0600_and_reused(tmp_path: Path) -> None:
    box = SecretBox.from_settings(None, tmp_path)
    key_file = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = box.encrypt("hunter2")
    assert b"hunter2" not in token
    assert SecretBox.from_settings(None, tmp_path).decrypt(token).value == "hunter2"


def test_secret_key_from_environment_and_wrong_key(tmp_path: Path) -> None:
    a = SecretBox.from_settings("a passphrase", tmp_path)
    token = a.encrypt("hunter2")
    assert not (tmp_path / KEY_FILE_NAME).exists()
    assert SecretBox.from_settings("a passphrase", tmp_path).decrypt(token).value == "hunter2"
    with pytest.raises(ConfigError) as info:
        SecretBox.from_settings("another", tmp_path).decrypt(token)
    assert info.value.code == "secret_key_mismatch"


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    SecretBox.from_settings(None, tmp_path)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(ConfigError) as info:
        SecretBox.from_settings(None, tmp_path)
    assert info.value.code == "secret_key_permissions"


def test_decrypted_secret_never_shows_itself(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("hunter2")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("cadence.test").info("secret is %s / %r", secret, secret)
    assert "hunter2" not in caplog.text
    assert "hunter2" not in repr([secret])
