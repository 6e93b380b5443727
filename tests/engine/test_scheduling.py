"""Scheduling: business days, windows in the prospect's zone, DST, pacing.  Pure functions."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from cadence.engine.scheduling import (
    Pacing,
    Window,
    add_business_days,
    add_delay,
    localize,
    parse_days,
    parse_holidays,
)
from cadence.errors import UsageError

NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
TOKYO = ZoneInfo("Asia/Tokyo")
UTCZ = ZoneInfo("UTC")


def test_two_business_days_after_friday_is_tuesday_same_local_time() -> None:
    friday = datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)
    assert add_business_days(friday, 2, PARIS) == datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)


def test_business_days_skip_holidays() -> None:
    wednesday = datetime(2026, 12, 23, 15, 0, tzinfo=PARIS)
    holidays = parse_holidays(["2026-12-25", "2026-12-28"])
    # Thu 24 (1), Fri 25 holiday, Mon 28 holiday, Tue 29 (2).
    assert add_business_days(wednesday, 2, PARIS, holidays) == datetime(
        2026, 12, 29, 15, 0, tzinfo=PARIS
    )


def test_zero_delay_is_now() -> None:
    t = datetime(2026, 11, 21, 12, tzinfo=UTC)  # a Saturday: the window decides, not the delay
    assert add_delay(t, tz=PARIS) == t


def test_business_days_keep_wall_clock_across_dst_end() -> None:
    # Friday 30 Oct 2026, 09:00 in New York is EDT (UTC-4); DST ends Sunday 1 Nov.
    friday = localize(datetime(2026, 10, 30, 9, 0), NY)
    monday = add_business_days(friday, 1, NY)
    assert monday.astimezone(NY).time() == time(9, 0)
    assert monday.astimezone(UTC) == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # now EST
    assert monday.astimezone(UTC) - friday.astimezone(UTC) == timedelta(days=3, hours=1)


def test_hours_are_elapsed_time_across_dst_start() -> None:
    # Saturday 28 Mar 2026 12:00 Paris (UTC+1); DST starts Sunday 29 Mar 02:00 -> 03:00.
    start = localize(datetime(2026, 3, 28, 12, 0), PARIS)
    due = add_delay(start, hours=24, tz=PARIS)
    assert due.astimezone(PARIS) == localize(datetime(2026, 3, 29, 13, 0), PARIS)


def test_localize_resolves_gap_and_fold() -> None:
    # 02:30 does not exist on 29 Mar 2026 in Paris: the first existing instant is 03:00 CEST.
    gap = localize(datetime(2026, 3, 29, 2, 30), PARIS)
    assert gap.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # 01:30 happens twice on 1 Nov 2026 in New York: the first one (EDT).
    fold = localize(datetime(2026, 11, 1, 1, 30), NY)
    assert fold.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_window_in_the_prospects_zone() -> None:
    window = Window.parse("mon-fri", "09:00", "17:00")
    # 23:00 UTC on Monday is 08:00 Tuesday in Tokyo: opens at 09:00 Tokyo = 00:00 UTC.
    t = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert window.next_open(t, TOKYO) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    # The same instant for a New York prospect is 18:00 Monday: closed until Tuesday 09:00 EST.
    assert window.next_open(t, NY) == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


def test_inside_window_is_now() -> None:
    window = Window.parse("mon-fri", "09:00", "17:00")
    t = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
    assert window.next_open(t, PARIS) == t
    assert window.contains(t, PARIS)
    assert not window.contains(datetime(2026, 11, 24, 17, 0, tzinfo=PARIS), PARIS)


def test_missed_window_waits_for_next_one_skipping_weekend() -> None:
    window = Window.parse(["mon", "tue", "wed", "thu", "fri"], "09:00", "11:00")
    friday_noon = datetime(2026, 11, 27, 12, 0, tzinfo=PARIS)
    assert window.next_open(friday_noon, PARIS) == datetime(
        2026, 11, 30, 9, 0, tzinfo=PARIS
    ).astimezone(UTC)


def test_whole_day_window_and_24_00() -> None:
    window = Window.parse(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "00:00", "24:00")
    t = datetime(2026, 11, 28, 23, 59, tzinfo=PARIS)
    assert window.next_open(t, PARIS) == t


def test_window_skips_the_mailboxs_holidays_in_its_zone() -> None:
    window = Window.parse("mon-fri", "09:00", "17:00")
    holidays = parse_holidays(["2026-12-25"])
    t = datetime(2026, 12, 25, 8, 0, tzinfo=PARIS)
    assert window.next_open(t, PARIS, holidays, PARIS) == datetime(
        2026, 12, 28, 9, 0, tzinfo=PARIS
    ).astimezone(UTC)


def test_window_opening_inside_dst_gap_opens_when_the_day_resumes() -> None:
    window = Window.parse("sun", "02:30", "05:00")
    t = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert window.next_open(t, PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_window_on_dst_end_day_is_measured_in_local_time() -> None:
    window = Window.parse("sun", "09:00", "10:00")
    t = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    # Sunday 1 Nov 2026 09:00 EST (after the change) is 14:00 UTC, not 13:00.
    assert window.next_open(t, NY) == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)


def test_bad_windows_and_days_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        Window.parse("mon", "17:00", "09:00")
    with pytest.raises(UsageError):
        parse_days("funday")
    with pytest.raises(UsageError):
        parse_holidays(["25/12/2026"])
    assert parse_days("sat-mon") == frozenset({5, 6, 0})


def _pacing(cap: int = 3, gap: int = 120, jitter: int = 60) -> Pacing:
    return Pacing(cap, timedelta(seconds=gap), timedelta(seconds=jitter), PARIS, seed="mb1")


def test_pacing_gap_plus_jitter_is_deterministic_and_bounded() -> None:
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    last = now - timedelta(seconds=10)
    slot = _pacing().next_slot(now, last, 1)
    assert last + timedelta(seconds=120) <= slot <= last + timedelta(seconds=180)
    assert _pacing().next_slot(now, last, 1) == slot  # same history, same answer
    # Different send times give different jitter: sends do not fall into a fixed rhythm.
    gaps = {
        _pacing().next_slot(now, now - timedelta(seconds=s), 1) + timedelta(seconds=s) - now
        for s in range(20)
    }
    assert len(gaps) > 10


def test_pacing_never_bursts() -> None:
    pacing = _pacing(cap=1000, gap=90, jitter=30)
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    last: datetime | None = None
    times = []
    for i in range(50):
        slot = pacing.next_slot(now, last, i)
        times.append(slot)
        last = now = slot
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 90 and max(gaps) <= 120


def test_daily_cap_waits_for_the_next_local_day() -> None:
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 16:00 in Paris
    slot = _pacing(cap=3).next_slot(now, now - timedelta(hours=1), 3)
    assert slot == datetime(2026, 11, 25, 0, 0, tzinfo=PARIS).astimezone(UTC)
    assert _pacing(cap=3).next_slot(now, now - timedelta(hours=1), 2) == now


def test_no_previous_send_means_now() -> None:
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert _pacing().next_slot(now, None, 0) == now


def test_holiday_parsing() -> None:
    assert parse_holidays(["2026-01-01"]) == frozenset({date(2026, 1, 1)})
