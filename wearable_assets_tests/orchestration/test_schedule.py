"""The daily schedule: which participant-days it asks for, and how it packs them into runs."""

from datetime import date, datetime, timedelta, timezone
from itertools import product

import dagster as dg
import pytest

from wearable_assets import settings
from wearable_assets.definitions import defs
from wearable_assets.orchestration import schedules
from wearable_assets.orchestration.schedules import KeyRange, due_days, plan_ranges
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import Participant, load_roster
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.conftest import add_participants

D = [date(2026, 11, 1) + timedelta(days=i) for i in range(10)]
TICK = datetime(2026, 11, 5, 3, 0, tzinfo=timezone.utc)


def keys(ranges: list[KeyRange], order: list[str]) -> list[tuple[date, str]]:
    """Every participant-day the ranges cover, as Dagster expands a rectangle (with repeats, if any)."""
    out = []
    for r in ranges:
        first, last = order.index(r.participants[0]), order.index(r.participants[-1])
        assert list(r.participants) == order[first:last + 1], "a range must be contiguous in partition order"
        days = [r.first_day + timedelta(days=i) for i in range((r.last_day - r.first_day).days + 1)]
        out += list(product(days, r.participants))
    return sorted(out)


def wanted_keys(wanted: dict[str, list[date]]) -> list[tuple[date, str]]:
    return sorted((d, p) for p, days in wanted.items() for d in days)


ORDER = ["P1", "P2", "P3", "P4", "P5"]


def test_everyone_due_on_the_same_days_is_one_rectangle() -> None:
    wanted = {p: D[0:4] for p in ORDER}
    ranges = plan_ranges(wanted, ORDER, max_partitions_per_run=40)
    assert ranges == [KeyRange(D[0], D[3], tuple(ORDER))]
    assert ranges[0].tags() == {schedules.RANGE_START: "2026-11-01|P1", schedules.RANGE_END: "2026-11-04|P5",
                                schedules.PARTICIPANT_DAYS_TAG: "2026-11-01..2026-11-04 x P1..P5 (20)"}


def test_each_run_says_which_participant_days_it_covers() -> None:
    """The readable tag names the run's dates, its participant range and its size, and agrees
    with the range Dagster runs (a single day or a single participant is written once)."""
    wanted = {"P1": D[0:4], "P2": D[0:4], "P3": D[2:3], "P5": D[0:1]}
    ranges = plan_ranges(wanted, ORDER, max_partitions_per_run=3)
    labels = [r.tags()[schedules.PARTICIPANT_DAYS_TAG] for r in ranges]
    for r, label in zip(ranges, labels, strict=True):
        days, people, count = label.replace(" x ", " ").split(" ")
        first, _, last = days.partition("..")
        assert (date.fromisoformat(first), date.fromisoformat(last or first)) == (r.first_day, r.last_day)
        p0, _, p1 = people.partition("..")
        assert (p0, p1 or p0) == (r.participants[0], r.participants[-1])
        assert count == f"({r.size})" and r.size == len(keys([r], ORDER))
    assert sum(r.size for r in ranges) == len(wanted_keys(wanted))
    assert "2026-11-03 x P1..P3 (3)" in labels and "2026-11-01 x P5 (1)" in labels


def test_rectangles_are_cut_to_the_batch_size() -> None:
    wanted = {p: D[0:4] for p in ORDER}
    ranges = plan_ranges(wanted, ORDER, max_partitions_per_run=8)
    assert [r.participants for r in ranges] == [("P1", "P2"), ("P3", "P4"), ("P5",)]
    assert all(r.size <= 8 for r in ranges) and keys(ranges, ORDER) == wanted_keys(wanted)
    # One participant with more days than a batch holds is cut along the days.
    long = {"P2": D[0:10]}
    ranges = plan_ranges(long, ORDER, max_partitions_per_run=4)
    assert [(r.first_day, r.last_day) for r in ranges] == [(D[0], D[3]), (D[4], D[7]), (D[8], D[9])]


def test_gaps_and_time_zones_split_rectangles_but_cover_exactly_the_wanted_days() -> None:
    wanted = {
        "P1": D[0:4],  # west of UTC: one day behind
        "P2": D[1:5],
        "P4": D[1:5],  # P3 is not due (not enrolled): P2 and P4 cannot share a range
        "P5": D[1:5],
        "P9": D[1:5],  # not in the partitions yet: ignored
    }
    ranges = plan_ranges(wanted, ORDER, max_partitions_per_run=40)
    assert keys(ranges, ORDER) == wanted_keys({p: d for p, d in wanted.items() if p != "P9"})
    assert ranges == [
        KeyRange(D[0], D[0], ("P1",)),
        KeyRange(D[1], D[3], ("P1", "P2")),
        KeyRange(D[1], D[4], ("P4", "P5")),
        KeyRange(D[4], D[4], ("P2",)),
    ]


def test_yesterday_is_each_participants_own() -> None:
    la = Participant("LA", "S1", "America/Los_Angeles", date(2026, 1, 1), None)
    brisbane = Participant("BNE", "S1", "Australia/Brisbane", date(2026, 1, 1), None)
    # 03:00 UTC: 19:00 on the 4th in Los Angeles, 13:00 on the 5th in Brisbane.
    assert due_days(la, TICK, 3, date(2025, 1, 1), date(2026, 11, 4)) == [D[0] - timedelta(days=1), D[0], D[1], D[2]]
    assert due_days(brisbane, TICK, 3, date(2025, 1, 1), date(2026, 11, 4)) == [D[0], D[1], D[2], D[3]]
    # Enrolment and the partitions' first day clip the window.
    ended = Participant("X", "S1", "Australia/Brisbane", date(2026, 1, 1), D[1])
    assert due_days(ended, TICK, 3, date(2025, 1, 1), D[3]) == [D[0], D[1]]
    starting = Participant("Y", "S1", "Australia/Brisbane", D[3], None)
    assert due_days(starting, TICK, 3, date(2025, 1, 1), D[3]) == [D[3]]
    assert due_days(starting, TICK, 3, date(2025, 1, 1), D[2]) == []


@pytest.fixture
def demo(timescale: TimescaleResource, instance: dg.DagsterInstance) -> TimescaleResource:
    upsert_participants(timescale, load_roster(settings.REPO_ROOT / "roster" / "demo_roster.csv"))
    add_participants(instance, "P001", "P002", "P003", "P004", "P005")
    return timescale


def evaluate(instance: dg.DagsterInstance, timescale: TimescaleResource, when: datetime) -> list[dg.RunRequest]:
    # Entered as Dagster's daemon does: the context opens an instance of its own and must close it again.
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                   resources={"timescale": timescale}) as context:
        return list(defs.resolve_schedule_def("daily_participant_days").evaluate_tick(context).run_requests or [])


def test_schedule_asks_for_the_demo_cohorts_due_days(demo: TimescaleResource, instance: dg.DagsterInstance) -> None:
    requests = evaluate(instance, demo, TICK)

    order = ["P001", "P002", "P003", "P004", "P005"]
    covered = []
    for request in requests:
        start, end = request.tags[schedules.RANGE_START], request.tags[schedules.RANGE_END]
        (d0, p0), (d1, p1) = start.split("|"), end.split("|")
        first, last = date.fromisoformat(d0), date.fromisoformat(d1)
        span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        covered += [(d.isoformat(), p) for d in span for p in order[order.index(p0):order.index(p1) + 1]]
        assert request.run_key and request.run_key.startswith("2026-11-05T03:00:")
        size = len(span) * (order.index(p1) - order.index(p0) + 1)
        days = d0 if d0 == d1 else f"{d0}..{d1}"
        people = p0 if p0 == p1 else f"{p0}..{p1}"
        assert request.tags[schedules.PARTICIPANT_DAYS_TAG] == f"{days} x {people} ({size})"
    expected = (
        [(d, "P001") for d in ("2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03")]  # New York: 22:00 on the 4th
        + [(d, "P002") for d in ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04")]  # Brisbane
        + [("2026-11-01", "P003")]  # London, enrolment ended on 1 November
        + [(d, "P004") for d in ("2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03")]  # Los Angeles
        + [(d, "P005") for d in ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04")]  # Tokyo
    )
    assert sorted(covered) == sorted(expected)
    # Per day, contiguous due participants form a range: 31 Oct P001 | P004; 1 Nov P001-P005;
    # 2-3 Nov P001-P002 | P004-P005; 4 Nov P002 | P005.
    assert len(requests) == 7
    assert len({r.run_key for r in requests}) == len(requests)


def test_schedule_is_on_by_default_at_three_and_configurable(demo: TimescaleResource,
                                                             instance: dg.DagsterInstance,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = defs.resolve_schedule_def("daily_participant_days")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 9 * * *", "UTC")
    assert schedule.job_name == "participant_day_job"

    monkeypatch.setenv(settings.REPULL_DAYS_ENV, "0")
    monkeypatch.setenv(settings.SCHEDULE_BATCH_ENV, "2")
    requests = evaluate(instance, demo, TICK)
    sizes = []
    for r in requests:
        (d0, p0), (d1, p1) = (t.split("|") for t in (r.tags[schedules.RANGE_START], r.tags[schedules.RANGE_END]))
        assert d0 == d1  # yesterday only
        sizes.append(int(p1[1:]) - int(p0[1:]) + 1)
    # Yesterday: 3 Nov for New York and Los Angeles, 4 Nov for Brisbane and Tokyo; P003's enrolment ended.
    assert sum(sizes) == 4 and max(sizes) <= 2


def test_schedule_skips_without_participants(timescale: TimescaleResource, instance: dg.DagsterInstance) -> None:
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=TICK,
                                   resources={"timescale": timescale}) as context:
        result = defs.resolve_schedule_def("daily_participant_days").evaluate_tick(context)
    assert not result.run_requests and "roster sensor" in (result.skip_message or "")


ZONES = ["America/New_York", "Europe/London", "Australia/Brisbane", "Asia/Tokyo", "America/Los_Angeles"]


@pytest.mark.parametrize("hour, expected_runs", [(int(schedules.DEFAULT_CRON.split()[1]), 84), (3, 463)])
def test_the_default_tick_packs_a_multi_zone_study_into_whole_runs(hour: int, expected_runs: int) -> None:
    """1,000 participants interleaved over five zones from Los Angeles to Tokyo: at the default
    hour every one has the same yesterday, so the tick is whole rectangles; at 03:00 UTC New York
    and Los Angeles are a day behind and split every rectangle (the schedule's docstring)."""
    roster = [Participant(f"B{n:04d}", "S", ZONES[n % len(ZONES)], date(2026, 10, 1), fitbit_provider="google_health")
              for n in range(1, 1001)]
    order = [p.participant_id for p in roster]
    tick = datetime(2026, 11, 20, hour, tzinfo=timezone.utc)
    ranges = schedules.plan_daily_runs(roster, order, tick, repull_days=3, max_partitions_per_run=50)
    wanted = {p.participant_id: due_days(p, tick, 3, date(2025, 1, 1), date(2026, 11, 20)) for p in roster}
    assert keys(ranges, order) == wanted_keys(wanted)  # exactly the due participant-days, once each
    assert len(ranges) == expected_runs
    if hour != 3:
        assert len({tuple(days) for days in wanted.values()}) == 1  # the same due days for all
        assert sum(r.size < 48 for r in ranges) <= 1
