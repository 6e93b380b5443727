"""Benchmark (a): one scheduling pass over 100,000 active enrollments, on SQLite and on
PostgreSQL, against a plain SQL query returning the same due rows.

    python bench/schedule_pass.py [--n 100000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

The pass is ``SendingEngine.schedule``: it reads every due enrollment with its step's window,
the prospect's and mailbox's zones and the mailbox's holidays, decides per row whether the
window is open now, and moves the others to the moment it opens.  Half of the enrollments
are due; prospects are spread over eight time zones.  Two cases: windows always open (the
pass only decides), and business-hours windows (the pass also reschedules the closed ones).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text, update

from cadence.engine.sending import PassReport, SendingEngine
from cadence.store.db import Database, open_database
from cadence.store.models import Cadence, Enrollment, Mailbox, Prospect, Step
from cadence.store.secrets import SecretBox

ZONES = [
    "UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo",
    "America/Los_Angeles", "Australia/Sydney", "Asia/Kolkata", "Europe/London",
]  # fmt: skip
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def populate(db: Database, n: int) -> None:
    async with db.transaction() as s:
        mb = Mailbox(
            address="rep@bench.test", username="rep@bench.test", secret=b"x",
            imap_host="localhost", smtp_host="localhost", timezone="Europe/Paris",
            holidays=["2026-12-25"],
        )  # fmt: skip
        cad = Cadence(
            name="bench",
            steps=[Step(position=0, subject="s", body="b",
                        window_days="mon,tue,wed,thu,fri,sat,sun",
                        window_from="00:00", window_to="24:00")],
        )  # fmt: skip
        s.add_all([mb, cad])
        await s.flush()
        mailbox_id, cadence_id = mb.id, cad.id
    chunk = 10_000
    for start in range(0, n, chunk):
        rows = range(start, min(n, start + chunk))
        async with db.transaction() as s:
            await s.execute(
                insert(Prospect),
                [
                    {"id": i + 1, "email": f"p{i}@bench.test", "first_name": f"P{i}",
                     "timezone": ZONES[i % len(ZONES)], "custom_fields": {},
                     "do_not_contact": False, "created_at": NOW}
                    for i in rows
                ],
            )  # fmt: skip
            await s.execute(
                insert(Enrollment),
                [
                    {"prospect_id": i + 1, "cadence_id": cadence_id, "mailbox_id": mailbox_id,
                     "state": "active", "current_step": 0, "attempts": 0,
                     # half due (in the past), half in the future
                     "next_due_at": NOW - timedelta(minutes=i % 997) if i % 2 == 0
                     else NOW + timedelta(days=1, minutes=i % 997),
                     "created_at": NOW, "updated_at": NOW}
                    for i in rows
                ],
            )  # fmt: skip
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")


async def plain_query(db: Database) -> tuple[float, int]:
    t0 = time.perf_counter()
    async with db.transaction() as s:
        ids = (
            await s.execute(
                select(Enrollment.id)
                .where(Enrollment.state == "active", Enrollment.next_due_at <= NOW)
                .order_by(Enrollment.next_due_at)
            )
        ).all()
    return time.perf_counter() - t0, len(ids)


async def scheduling_pass(db: Database) -> tuple[float, PassReport, int]:
    engine = SendingEngine(db, SecretBox(b"0" * 43 + b"="), lambda: NOW)
    report = PassReport()
    t0 = time.perf_counter()
    ready = await engine.schedule(NOW, report)
    elapsed = time.perf_counter() - t0
    return elapsed, report, sum(len(v) for v in ready.values())


async def bench(url: str, label: str, n: int, repeat: int) -> None:
    db = await open_database(url)
    try:
        t0 = time.perf_counter()
        await populate(db, n)
        print(f"[{label}] populated {n:,} enrollments in {time.perf_counter() - t0:.1f}s")
        base_times, pass_times = [], []
        for _ in range(repeat):
            bt, due = await plain_query(db)
            pt, report, ready = await scheduling_pass(db)
            assert ready == due and report.deferred == 0, (ready, due, report.deferred)
            base_times.append(bt)
            pass_times.append(pt)
        b, p = statistics.median(base_times), statistics.median(pass_times)
        print(
            f"[{label}] windows open : {due:,} due rows; plain SQL {b * 1000:.0f} ms, "
            f"scheduling pass {p * 1000:.0f} ms, ratio {p / b:.1f}x (median of {repeat})"
        )
        # Business hours in the prospect's zone: at 12:00 UTC some zones are closed.
        async with db.transaction() as s:
            await s.execute(
                update(Step).values(window_days="mon,tue,wed,thu,fri", window_from="09:00",
                                    window_to="17:00")
            )  # fmt: skip
        bt, due = await plain_query(db)
        pt, report, ready = await scheduling_pass(db)
        print(
            f"[{label}] business hours: {due:,} due; {ready:,} ready, {report.deferred:,} "
            f"rescheduled; plain SQL {bt * 1000:.0f} ms, pass {pt * 1000:.0f} ms, "
            f"ratio {pt / bt:.1f}x"
        )
        async with db.transaction() as s:
            left = await s.scalar(
                select(func.count()).select_from(Enrollment).where(Enrollment.next_due_at <= NOW)
            )
        assert left == ready
    finally:
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin DSN; a throwaway database is created and dropped")  # fmt: skip
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await bench(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", "sqlite", args.n, args.repeat)
    if args.no_pg:
        return
    import asyncpg

    name = f"cadence_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.pg)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        await bench(f"{url}/{name}", "postgresql", args.n, args.repeat)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    _ = text
    asyncio.run(main())
