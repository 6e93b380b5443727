"""`/healthz` for load balancers and `/metrics` in Prometheus' text format."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from cadence.api.deps import State
from cadence.engine.stats import metrics as gather_metrics

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz(state: State) -> dict[str, Any]:
    """200 when the database answers."""
    from sqlalchemy import text

    async with state.runtime.db.transaction() as s:
        await s.execute(text("SELECT 1"))
    return {"status": "ok", "database": state.runtime.db.dialect}


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> PlainTextResponse:
    """Messages sent, replies detected, watcher states, queue depth (Prometheus text 0.0.4)."""
    async with state.runtime.db.transaction() as s:
        m = await gather_metrics(s, state.now())
    lines = [
        "# HELP cadence_messages_sent_total Messages the SMTP server accepted.",
        "# TYPE cadence_messages_sent_total counter",
        f"cadence_messages_sent_total {m.messages_sent}",
        "# HELP cadence_replies_detected_total Human replies detected by the watchers.",
        "# TYPE cadence_replies_detected_total counter",
        f"cadence_replies_detected_total {m.replies_detected}",
        "# HELP cadence_queue_depth Active enrollments whose next step is due now.",
        "# TYPE cadence_queue_depth gauge",
        f"cadence_queue_depth {m.queue_depth}",
        "# HELP cadence_enrollments Enrollments by state.",
        "# TYPE cadence_enrollments gauge",
    ]
    lines += [
        f'cadence_enrollments{{state="{_label(k)}"}} {v}'
        for k, v in sorted(m.enrollments_by_state.items())
    ]
    lines += ["# HELP cadence_mailboxes Mailboxes by status.", "# TYPE cadence_mailboxes gauge"]
    lines += [
        f'cadence_mailboxes{{status="{_label(k)}"}} {v}'
        for k, v in sorted(m.mailboxes_by_status.items())
    ]
    lines += [
        "# HELP cadence_watcher_state Mailbox watchers by state (1 per mailbox).",
        "# TYPE cadence_watcher_state gauge",
    ]
    for mailbox, watcher_state in sorted(watcher_states(state).items()):
        labels = f'mailbox="{_label(mailbox)}",state="{_label(watcher_state)}"'
        lines.append(f"cadence_watcher_state{{{labels}}} 1")
    return PlainTextResponse(
        "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
    )


def watcher_states(state: State) -> dict[str, str]:
    """mailbox id -> watcher state, from ``WatcherService.health()``."""
    if state.watchers is None:
        return {}
    health = state.watchers.health()
    if not isinstance(health, dict):
        return {}
    return {str(k): str(getattr(v, "state", v)) for k, v in health.items()}
