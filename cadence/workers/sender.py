"""The sender worker: scheduling passes in a loop until SIGTERM (or one pass with --once).

A pass finishes the message in hand before stopping, so a SIGTERM never leaves a message
half-recorded; anything a hard kill leaves behind is resolved by the engine's recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta

from cadence.engine.runtime import Runtime
from cadence.engine.scheduling import Clock
from cadence.engine.sending import PassReport, SendingEngine, SendPolicy, TransportFactory
from cadence.engine.transport import LiveTransport

log = logging.getLogger("cadence.sender")


async def run_sender(
    runtime: Runtime,
    clock: Clock,
    *,
    once: bool = False,
    policy: SendPolicy | None = None,
    transport_factory: TransportFactory = LiveTransport,
    stop: asyncio.Event | None = None,
) -> PassReport:
    """Run until ``stop`` is set (SIGTERM/SIGINT set it) or, with ``once``, for one pass."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    engine = SendingEngine(
        runtime.db,
        runtime.secrets,
        clock,
        transport_factory=transport_factory,
        policy=policy,
        should_stop=stop.is_set,
    )
    total = PassReport()
    try:
        while not stop.is_set():
            report = await engine.run_pass()
            for name in ("sent", "bounced", "retried", "held", "deferred", "recovered", "unknown"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            log.info(
                "pass: %d sent, %d bounced, %d retried, %d held, %d deferred, %d recovered",
                report.sent,
                report.bounced,
                report.retried,
                report.held,
                report.deferred,
                report.recovered,
            )
            if once:
                break
            wait = timedelta(seconds=30)
            if report.next_wake is not None:
                wait = max(timedelta(seconds=1), min(wait, report.next_wake - clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait.total_seconds())
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return total
