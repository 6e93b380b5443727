"""When may a step be sent?  Pure functions of their arguments and an injected clock.

* ``add_delay``: a step's delay after the previous one, in business days (weekends and the
  mailbox's holidays skipped, the local wall-clock time kept) and/or hours (elapsed time).
* ``Window.next_open``: the first instant at or after ``t`` inside a send window, evaluated in
  the prospect's time zone (else the mailbox's).  A step that misses its window waits for the
  next one.
* ``Pacing.next_slot``: the mailbox's daily cap and minimum gap with jitter, so sends never
  leave in bursts.

Local times are converted with zoneinfo.  A wall-clock time that does not exist (the hour
skipped when DST starts) moves to the first instant that does; an ambiguous one (the hour
repeated when DST ends) means its first occurrence.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cadence.errors import UsageError

Clock = Callable[[], datetime]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = frozenset(range(5))
ALL_DAYS = frozenset(range(7))
# How far ahead we look for an open window before deciding it never opens.
_MAX_DAYS_AHEAD = 800


def system_clock() -> datetime:
    return datetime.now(UTC)


def zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r}",
            code="bad_timezone",
            hint="use an IANA name such as Europe/Paris or America/New_York",
        ) from None


def parse_days(
    spec: str | Iterable[str] | None, default: frozenset[int] = WEEKDAYS
) -> frozenset[int]:
    """``"mon,tue"`` or ``["mon", "tue"]`` -> ``{0, 1}``; ``"mon-fri"`` ranges too."""
    if spec is None:
        return default
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    days: set[int] = set()
    for item in (str(i).strip().lower() for i in items):
        if not item:
            continue
        if "-" in item:
            first, _, last = item.partition("-")
            a, b = _day_index(first), _day_index(last)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            days.add(_day_index(item))
    if not days:
        raise UsageError("a window needs at least one day", code="bad_window")
    return frozenset(days)


def _day_index(name: str) -> int:
    key = name.strip().lower()[:3]
    if key not in DAY_NAMES:
        raise UsageError(
            f"unknown day {name!r}", code="bad_window", hint="use mon, tue, wed, thu, fri, sat, sun"
        )
    return DAY_NAMES.index(key)


def format_days(days: frozenset[int]) -> str:
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def parse_clock_time(text: str) -> time | None:
    """``"09:30"`` -> 09:30; ``"24:00"`` -> None, meaning the end of the day."""
    text = str(text).strip()
    if text in ("24:00", "24:00:00"):
        return None
    try:
        hours, _, minutes = text.partition(":")
        return time(int(hours), int(minutes or 0))
    except ValueError:
        raise UsageError(
            f"bad time of day {text!r}", code="bad_window", hint="use HH:MM, from 00:00 to 24:00"
        ) from None


def localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """The aware instant for a local wall-clock time, resolving DST gaps and folds."""
    candidate = naive.replace(tzinfo=tz, fold=0)
    if candidate.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive:
        return candidate  # exists (first occurrence when ambiguous)
    # In a gap: the first existing local minute after it.
    probe = naive
    for _ in range(24 * 60):
        probe += timedelta(minutes=1)
        c = probe.replace(tzinfo=tz, fold=0)
        if c.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == probe:
            return c
    raise ValueError(f"{naive} does not exist in {tz}")  # pragma: no cover


def is_business_day(
    day: date, holidays: frozenset[date], workdays: frozenset[int] = WEEKDAYS
) -> bool:
    return day.weekday() in workdays and day not in holidays


def add_business_days(
    start: datetime,
    days: int,
    tz: ZoneInfo,
    holidays: frozenset[date] = frozenset(),
    workdays: frozenset[int] = WEEKDAYS,
) -> datetime:
    """``days`` business days after ``start``, keeping its local wall-clock time in ``tz``.

    Counting starts on the day after ``start``: two business days after Friday 10:00 is
    Tuesday 10:00.  Zero days is ``start`` itself.
    """
    if days <= 0:
        return start
    local = start.astimezone(tz)
    day = local.date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_business_day(day, holidays, workdays):
            counted += 1
    return localize(datetime.combine(day, local.time().replace(tzinfo=None)), tz)


def add_delay(
    previous: datetime,
    *,
    business_days: int = 0,
    hours: float = 0,
    tz: ZoneInfo,
    holidays: frozenset[date] = frozenset(),
) -> datetime:
    """A step's due time after the previous step was sent at ``previous``."""
    due = add_business_days(previous, business_days, tz, holidays)
    # Hours are elapsed time: across a DST change 24 hours is not "the same time tomorrow".
    return (due.astimezone(UTC) + timedelta(hours=hours)).astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """Local send window: on ``days``, from ``start`` up to (not including) ``end``."""

    days: frozenset[int] = WEEKDAYS
    start: time = time(9, 0)
    end: time | None = time(17, 0)  # None: until midnight ("24:00")

    @classmethod
    def parse(cls, days: str | Iterable[str] | None, start: str | None, end: str | None) -> Window:
        begin = parse_clock_time(start or "00:00") or time(0, 0)
        finish = parse_clock_time(end or "24:00")
        if finish is not None and finish <= begin:
            raise UsageError(
                f"the window ends ({end}) before it starts ({start})",
                code="bad_window",
                hint="windows crossing midnight are not supported: use two steps or 00:00-24:00",
            )
        return cls(parse_days(days, ALL_DAYS), begin, finish)

    def _bounds(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        opens = localize(datetime.combine(day, self.start), tz)
        if self.end is None:
            closes = localize(datetime.combine(day + timedelta(days=1), time(0, 0)), tz)
        else:
            closes = localize(datetime.combine(day, self.end), tz)
        return opens, closes

    def contains(self, t: datetime, tz: ZoneInfo, holidays: frozenset[date] = frozenset()) -> bool:
        return self.next_open(t, tz, holidays) == t

    def next_open(
        self,
        t: datetime,
        tz: ZoneInfo,
        holidays: frozenset[date] = frozenset(),
        holiday_tz: ZoneInfo | None = None,
    ) -> datetime:
        """The first instant at or after ``t`` inside the window, as an aware UTC datetime.

        ``holidays`` are dates on which nothing is sent, read in ``holiday_tz`` (the mailbox's
        zone: they are the rep's days off), else in ``tz``.
        """
        local = t.astimezone(tz)
        # Fast path, the common case for a due step: the window is open right now.
        clock_time = local.time().replace(tzinfo=None)
        if (
            local.weekday() in self.days
            and self.start <= clock_time
            and (self.end is None or clock_time < self.end)
        ):
            holiday_day = local.date() if holiday_tz is None else t.astimezone(holiday_tz).date()
            if holiday_day not in holidays:
                return t.astimezone(UTC)
        day = local.date() - timedelta(days=1)  # a window may still be open from
        for _ in range(_MAX_DAYS_AHEAD):  # the day before in another zone's terms
            if day.weekday() in self.days:
                opens, closes = self._bounds(day, tz)
                candidate = max(t, opens)
                if candidate < closes:
                    holiday_day = candidate.astimezone(holiday_tz or tz).date()
                    if holiday_day not in holidays:
                        return candidate.astimezone(UTC)
            day += timedelta(days=1)
        raise UsageError("the send window never opens", code="bad_window")


@dataclass(frozen=True)
class Pacing:
    """A mailbox's sending limits: at most ``daily_cap`` sends per local day, at least
    ``min_gap`` apart plus a random ``jitter`` (seeded, so a given history gives one answer)."""

    daily_cap: int
    min_gap: timedelta
    jitter: timedelta
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    seed: str = ""

    def jitter_for(self, last_send: datetime) -> timedelta:
        if self.jitter <= timedelta(0):
            return timedelta(0)
        digest = hashlib.sha256(f"{self.seed}|{last_send.isoformat()}".encode()).digest()
        fraction = random.Random(digest).random()
        return timedelta(seconds=round(self.jitter.total_seconds() * fraction, 3))

    def day_start(self, t: datetime) -> datetime:
        return localize(datetime.combine(t.astimezone(self.tz).date(), time(0, 0)), self.tz)

    def next_slot(self, now: datetime, last_send: datetime | None, sent_today: int) -> datetime:
        """The earliest instant at or after ``now`` at which the mailbox may send again.

        ``sent_today`` counts the sends since the start of ``now``'s local day.
        """
        earliest = now
        if last_send is not None:
            earliest = max(earliest, last_send + self.min_gap + self.jitter_for(last_send))
        if self.daily_cap <= 0:
            raise UsageError("the daily cap must be at least 1", code="bad_limits")
        if (
            sent_today >= self.daily_cap
            and earliest.astimezone(self.tz).date() == now.astimezone(self.tz).date()
        ):
            tomorrow = now.astimezone(self.tz).date() + timedelta(days=1)
            earliest = max(earliest, localize(datetime.combine(tomorrow, time(0, 0)), self.tz))
        return earliest.astimezone(UTC)


def parse_holidays(values: Iterable[str]) -> frozenset[date]:
    out: set[date] = set()
    for v in values:
        try:
            out.add(date.fromisoformat(str(v).strip()))
        except ValueError:
            raise UsageError(
                f"bad holiday date {v!r}", code="bad_holiday", hint="use YYYY-MM-DD"
            ) from None
    return frozenset(out)
