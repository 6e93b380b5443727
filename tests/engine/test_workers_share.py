"""Several workers on one database: each due step is claimed by exactly one of them
(row locks with SKIP LOCKED on PostgreSQL; SQLite serialises writers)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from cadence.store.db import Database, open_database
from cadence.testing.fixtures import TestMailbox
from cadence.testing.smtp_server import SMTPTestServer

from .test_sending import T0, Clock, World


async def test_two_workers_never_send_the_same_step_twice(
    db: Database,
    db_url: str,
    tmp_path: Path,
    new_mailbox: Callable[..., TestMailbox],
    smtp_server: SMTPTestServer,
) -> None:
    from cadence.engine.sending import SendingEngine
    from cadence.store.secrets import SecretBox

    secrets = SecretBox.from_settings(None, tmp_path)
    world = World(db, secrets, Clock(T0), new_mailbox("rep"), smtp_server)
    prospects = [new_mailbox("p") for _ in range(6)]
    await world.setup(prospects)
    before = len(smtp_server.accepted)
    other = await open_database(db_url)
    try:
        engines = [
            SendingEngine(db, secrets, world.clock, worker_id="w1"),
            SendingEngine(other, secrets, world.clock, worker_id="w2"),
        ]
        reports = await asyncio.gather(*(e.run_pass() for e in engines))
        # A second round picks up anything the first left because of the locks.
        reports += await asyncio.gather(*(e.run_pass() for e in engines))
    finally:
        await other.close()
    assert sum(r.sent for r in reports) == 6
    recipients = Counter(r for m in smtp_server.accepted[before:] for r in m.rcpt_tos)
    assert recipients == Counter({p.address: 1 for p in prospects})
    states = {e.state for e in await world.enrollments()}
    assert states == {"active"}  # all on step 2 now
    assert {e.current_step for e in await world.enrollments()} == {1}
