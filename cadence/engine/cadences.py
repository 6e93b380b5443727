"""Declarative cadences: a YAML file describes a cadence; applying it again updates it.

```yaml
name: intro
steps:
  - type: email                       # email | manual_email | call | task
    subject: "Quick question, {{ first_name }}"
    body: "Hi {{ first_name | default('there') }}, ..."
    html: "<p>optional HTML body</p>" # default: made from the text body
    window: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00"}
  - type: email
    delay: {business_days: 2}         # and/or {hours: 4}, after the previous step was sent
    reply_in_thread: true             # "Re: " + the first subject, threaded under it
    body: "Following up on my note below."
```
A step without ``window`` uses the mailbox's working hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from cadence.engine.scheduling import Window, format_days, parse_clock_time
from cadence.engine.templates import check_syntax
from cadence.errors import UsageError
from cadence.store.models import Cadence, Step, StepType, utcnow
from cadence.store.repositories import CadenceRepository

_STEP_KEYS = {"type", "subject", "body", "html", "window", "delay", "reply_in_thread", "name"}


@dataclass(frozen=True)
class StepSpec:
    type: StepType
    body: str
    subject: str | None = None
    html: str | None = None
    delay_business_days: int = 0
    delay_hours: int = 0
    window_days: str | None = None
    window_from: str | None = None
    window_to: str | None = None
    reply_in_thread: bool = False


@dataclass(frozen=True)
class CadenceSpec:
    name: str
    steps: list[StepSpec] = field(default_factory=list)
    description: str | None = None


def _bad(message: str, where: str) -> UsageError:
    return UsageError(
        f"{where}: {message}", code="bad_cadence", hint="see docs/cadences.md for the format"
    )


def parse_cadence(text: str, source: str = "cadence file") -> CadenceSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _bad(f"not valid YAML ({exc})", source) from None
    if not isinstance(data, dict):
        raise _bad("expected a mapping with name and steps", source)
    name = str(data.get("name") or "").strip()
    if not name:
        raise _bad("the cadence needs a name", source)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _bad("the cadence needs at least one step", source)
    steps = [_parse_step(s, f"{source}, step {i + 1}", i) for i, s in enumerate(raw_steps)]
    return CadenceSpec(name=name, steps=steps, description=data.get("description"))


def _parse_step(raw: Any, where: str, index: int) -> StepSpec:
    if not isinstance(raw, dict):
        raise _bad("a step is a mapping", where)
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        raise _bad(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}", where)
    try:
        kind = StepType(str(raw.get("type", "email")))
    except ValueError:
        raise _bad(f"unknown step type {raw.get('type')!r}", where) from None
    body = raw.get("body")
    subject = raw.get("subject")
    reply = bool(raw.get("reply_in_thread", False))
    if kind is StepType.EMAIL:
        if not body:
            raise _bad("an email step needs a body", where)
        if not subject and not (reply and index > 0):
            raise _bad("an email step needs a subject (or reply_in_thread: true)", where)
    if reply and index == 0:
        raise _bad("the first step cannot reply in a thread", where)
    for key, value in (("subject", subject), ("body", body), ("html", raw.get("html"))):
        if value is not None:
            check_syntax(str(value), f"{where} {key}")
    delay = raw.get("delay") or {}
    if not isinstance(delay, dict) or set(delay) - {"business_days", "hours", "days"}:
        raise _bad("delay is {business_days: N} and/or {hours: N}", where)
    days = delay.get("business_days", delay.get("days", 0))
    hours = delay.get("hours", 0)
    if not isinstance(days, int) or not isinstance(hours, int) or days < 0 or hours < 0:
        raise _bad("delays are whole, non-negative numbers", where)
    window = raw.get("window")
    w_days = w_from = w_to = None
    if window is not None:
        if not isinstance(window, dict) or set(window) - {"days", "from", "to"}:
            raise _bad("window is {days: [...], from: HH:MM, to: HH:MM}", where)
        w_from = str(window.get("from", "00:00"))
        w_to = str(window.get("to", "24:00"))
        parsed = Window.parse(window.get("days"), w_from, w_to)  # validates
        w_days = format_days(parsed.days)
        parse_clock_time(w_from)
    return StepSpec(
        type=kind,
        body=str(body or ""),
        subject=str(subject) if subject is not None else None,
        html=str(raw["html"]) if raw.get("html") is not None else None,
        delay_business_days=days,
        delay_hours=hours,
        window_days=w_days,
        window_from=w_from,
        window_to=w_to,
        reply_in_thread=reply,
    )


@dataclass(frozen=True)
class ApplyResult:
    cadence_id: int
    name: str
    created: bool
    steps: int


async def apply_cadence(session: AsyncSession, spec: CadenceSpec) -> ApplyResult:
    """Create the cadence, or update it in place so enrollments keep their place."""
    repo = CadenceRepository(session)
    cadence = await repo.by_name(spec.name)
    created = cadence is None
    if cadence is None:
        cadence = await repo.add(Cadence(name=spec.name, description=spec.description))
        await session.refresh(cadence, ["steps"])
    cadence.description = spec.description
    cadence.updated_at = utcnow()
    existing = {s.position: s for s in cadence.steps}
    for position, step_spec in enumerate(spec.steps):
        step = existing.pop(position, None)
        if step is None:
            step = Step(position=position)
            cadence.steps.append(step)
        step.type = step_spec.type
        step.subject = step_spec.subject
        step.body = step_spec.body
        step.html = step_spec.html
        step.delay_business_days = step_spec.delay_business_days
        step.delay_hours = step_spec.delay_hours
        step.window_days = step_spec.window_days
        step.window_from = step_spec.window_from
        step.window_to = step_spec.window_to
        step.reply_in_thread = step_spec.reply_in_thread
    for leftover in existing.values():
        cadence.steps.remove(leftover)
    await session.flush()
    return ApplyResult(cadence.id, cadence.name, created, len(spec.steps))
