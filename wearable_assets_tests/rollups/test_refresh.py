"""The rollup SQL on hand-made source rows in the real TimescaleDB."""

from datetime import date, datetime, timedelta, timezone

import pytest

from wearable_assets import settings
from wearable_assets.fitbit.metrics import METRICS
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.rollups import queries, refresh
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.rollups.sources import (
    ACTIGRAPH_ONLY,
    BOTH,
    ENDED,
    FITBIT_ONLY,
    INDIA,
    NO_DEVICE,
    Sources,
    local_midnight,
    minutes_of,
    summary,
)

DAY = date(2026, 11, 3)  # a Tuesday; New York is at UTC-5 (DST ended on 1 November)


def pdays(participant, *days: date) -> list[ParticipantDay]:
    return [ParticipantDay(d, participant.participant_id) for d in days]


def hourly_rows(timescale: TimescaleResource, participant_id: str) -> list[tuple]:
    return timescale.fetch(
        "SELECT local_date, metric, bucket, local_hour, n_samples, mean_value, min_value, max_value, sum_value "
        "FROM wearables.intraday_hourly WHERE participant_id = %s ORDER BY bucket, metric, local_date",
        (participant_id,),
    )


def test_hourly_buckets_are_utc_hours_with_the_local_hour_kept(sources: Sources, timescale: TimescaleResource) -> None:
    stamps = minutes_of(FITBIT_ONLY, DAY, 8 * 60, 90)  # local 08:00-09:29 = 13:00-14:29 UTC
    sources.intraday(FITBIT_ONLY, "heart_rate", stamps, 60)
    sources.intraday(FITBIT_ONLY, "heart_rate", [t + timedelta(seconds=30) for t in stamps], 80)
    sources.intraday(FITBIT_ONLY, "steps", stamps, 10)
    # Samples of the neighbouring local days belong to other partitions.
    sources.intraday(FITBIT_ONLY, "steps", [local_midnight(FITBIT_ONLY, DAY) - timedelta(minutes=1),
                                            local_midnight(FITBIT_ONLY, DAY + timedelta(days=1))], 99)

    result = refresh.refresh_intraday_hourly(timescale, pdays(FITBIT_ONLY, DAY))

    utc = timezone.utc
    assert result == refresh.RefreshResult(partitions=1, deleted=0, inserted=4)
    assert hourly_rows(timescale, "F001") == [
        (DAY, "heart_rate", datetime(2026, 11, 3, 13, tzinfo=utc), 8, 120, 70.0, 60.0, 80.0, 8400.0),
        (DAY, "steps", datetime(2026, 11, 3, 13, tzinfo=utc), 8, 60, 10.0, 10.0, 10.0, 600.0),
        (DAY, "heart_rate", datetime(2026, 11, 3, 14, tzinfo=utc), 9, 60, 70.0, 60.0, 80.0, 4200.0),
        (DAY, "steps", datetime(2026, 11, 3, 14, tzinfo=utc), 9, 30, 10.0, 10.0, 10.0, 300.0),
    ]


def test_hourly_rerun_replaces_the_partition_and_nothing_else(sources: Sources, timescale: TimescaleResource) -> None:
    sources.worn(FITBIT_ONLY, DAY, 90)
    sources.worn(FITBIT_ONLY, DAY + timedelta(days=1), 30)
    refresh.refresh_intraday_hourly(timescale, pdays(FITBIT_ONLY, DAY, DAY + timedelta(days=1)))
    before = hourly_rows(timescale, "F001")

    again = refresh.refresh_intraday_hourly(timescale, pdays(FITBIT_ONLY, DAY))
    assert (again.deleted, again.inserted) == (4, 4)
    assert hourly_rows(timescale, "F001") == before

    # Upstream re-loaded the day with fewer samples: the rollup follows, the next day is untouched.
    timescale.execute("DELETE FROM wearables.fitbit_intraday WHERE participant_id = 'F001' AND metric = 'steps' "
                      "AND ts < %s", (local_midnight(FITBIT_ONLY, DAY + timedelta(days=1)),))
    refresh.refresh_intraday_hourly(timescale, pdays(FITBIT_ONLY, DAY))
    after = hourly_rows(timescale, "F001")
    assert [(r[0], r[1]) for r in after] == [(DAY, "heart_rate"), (DAY, "heart_rate"),
                                             (DAY + timedelta(days=1), "heart_rate"), (DAY + timedelta(days=1), "steps")]


def test_an_hour_split_by_a_half_hour_offset_belongs_to_both_days(sources: Sources, timescale: TimescaleResource) -> None:
    # Kolkata is UTC+5:30: local 23:45 on the 3rd and 00:15 on the 4th are both in the 18:00 UTC hour.
    late = local_midnight(INDIA, DAY) + timedelta(hours=23, minutes=45)
    early = local_midnight(INDIA, DAY + timedelta(days=1)) + timedelta(minutes=15)
    sources.intraday(INDIA, "steps", [late, early], [7, 11])

    refresh.refresh_intraday_hourly(timescale, pdays(INDIA, DAY, DAY + timedelta(days=1)))

    bucket = datetime(2026, 11, 3, 18, tzinfo=timezone.utc)
    assert [(r[0], r[2], r[3], r[8]) for r in hourly_rows(timescale, "K001")] == [
        (DAY, bucket, 23, 7.0), (DAY + timedelta(days=1), bucket, 23, 11.0),
    ]


def after(participant, day: date, hours: float) -> datetime:
    """An instant ``hours`` after the participant's local day ``day`` ended."""
    return local_midnight(participant, day + timedelta(days=1)) + timedelta(hours=hours)


def test_summary_explains_every_kind_of_missing_day(sources: Sources, timescale: TimescaleResource) -> None:
    d = [DAY + timedelta(days=i) for i in range(7)]
    src = "google_health"
    sources.worn(FITBIT_ONLY, d[0], 700, hr=70)
    sources.status(FITBIT_ONLY, d[0], src, "ok", last_sync=after(FITBIT_ONLY, d[0], 2))
    sources.worn(FITBIT_ONLY, d[1], 200)
    sources.status(FITBIT_ONLY, d[1], src, "ok", last_sync=after(FITBIT_ONLY, d[1], 5))
    sources.worn(FITBIT_ONLY, d[2], 200)
    sources.status(FITBIT_ONLY, d[2], src, "ok", last_sync=after(FITBIT_ONLY, d[2], -12))  # synced mid-day
    sources.status(FITBIT_ONLY, d[3], src, "needs_reconsent", detail="grant revoked")
    sources.status(FITBIT_ONLY, d[4], src, "api_error", detail="HTTP 503 after 5 attempts")
    sources.worn(FITBIT_ONLY, d[6], 700, steps_per_min=0)
    sources.status(FITBIT_ONLY, d[6], src, "ok", last_sync=after(FITBIT_ONLY, d[6], 1))
    sources.sleep(FITBIT_ONLY, d[0], [("light", 200), ("deep", 60), ("rem", 90), ("wake", 30)])
    sources.sleep(FITBIT_ONLY, d[0], [("wake", 5)], short=True)  # legacy short wakes overlap the stages

    sources.actigraph(ACTIGRAPH_ONLY, d[0], wear=650)
    sources.status(ACTIGRAPH_ONLY, d[0], "centrepoint", "ok")
    sources.worn(BOTH, d[0], 300)
    sources.status(BOTH, d[0], "fitbit_legacy", "ok", last_sync=after(BOTH, d[0], 3))
    sources.actigraph(BOTH, d[0], wear=620)
    sources.status(BOTH, d[0], "centrepoint", "ok")

    days = pdays(FITBIT_ONLY, *d) + pdays(ACTIGRAPH_ONLY, d[0]) + pdays(BOTH, d[0]) + pdays(ENDED, d[2]) \
        + pdays(NO_DEVICE, d[0])
    result = refresh.refresh_participant_day_summary(timescale, days, refresh.ValidDayRule())
    assert result.inserted == len(days)

    reasons = [summary(timescale, "F001", day)["completeness_reason"] for day in d]
    assert reasons == ["complete", "not_worn", "not_synced_yet", "fitbit_needs_reconsent", "fitbit_api_error",
                       "not_ingested", "true_zero"]
    states = [summary(timescale, "F001", day)["fitbit_status"] for day in d]
    assert states == ["ok", "ok", "not_synced_yet", "needs_reconsent", "api_error", "not_ingested", "ok"]
    first = summary(timescale, "F001", d[0])
    assert (first["valid_day"], first["fitbit_wear_minutes"], first["steps"], first["hr_mean"]) == (True, 700, 7000, 70)
    assert first["completeness"] == pytest.approx(700 / 1440)
    assert (first["sleep_minutes_asleep"], first["sleep_minutes_deep"], first["sleep_minutes_awake"]) == (350, 60, 30)
    assert (first["valid_day_rule"], first["valid_day_rule_version"]) == ("wear_minutes >= 600", "2")
    assert first["actigraph_reason"] is None and first["fitbit_source"] == "google_health"
    assert (first["actigraph_status"], first["quarantined_values"]) == ("not_rostered", 0)
    assert "api_error" in summary(timescale, "F001", d[4])["completeness_detail"]
    assert "HTTP 503" in summary(timescale, "F001", d[4])["completeness_detail"]
    assert summary(timescale, "F001", d[6])["valid_day"] is True  # a true zero is a valid, complete day

    only_actigraph = summary(timescale, "A001", d[0])
    assert (only_actigraph["completeness_reason"], only_actigraph["valid_day"], only_actigraph["wear_minutes"]) == (
        "complete", True, 650)
    both = summary(timescale, "B001", d[0])
    assert (both["fitbit_reason"], both["actigraph_reason"], both["completeness_reason"], both["wear_minutes"]) == (
        "not_worn", "complete", "complete", 620)
    assert (both["fitbit_status"], both["actigraph_status"]) == ("ok", "ok")
    assert summary(timescale, "E001", d[2])["completeness_reason"] == "not_enrolled"
    assert summary(timescale, "N001", d[0])["completeness_reason"] == "no_device"


def test_valid_day_threshold_comes_from_the_environment_and_is_stored(
    sources: Sources, timescale: TimescaleResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources.worn(BOTH, DAY, 300)
    sources.status(BOTH, DAY, "fitbit_legacy", "ok", last_sync=after(BOTH, DAY, 3))
    monkeypatch.setenv(settings.MIN_WEAR_ENV, "250")
    refresh.refresh_participant_day_summary(timescale, pdays(BOTH, DAY), refresh.ValidDayRule.from_env())
    row = summary(timescale, "B001", DAY)
    assert (row["fitbit_reason"], row["valid_day"], row["valid_day_rule"]) == ("complete", True, "wear_minutes >= 250")
    # The CentrePoint subject has no record and no ingest status yet.
    assert row["actigraph_reason"] == "not_ingested"

    monkeypatch.setenv(settings.MIN_WEAR_ENV, "ten hours")
    with pytest.raises(ValueError, match="WEARABLES_VALID_DAY_MIN_WEAR_MINUTES"):
        refresh.ValidDayRule.from_env()


def test_summary_rerun_is_idempotent(sources: Sources, timescale: TimescaleResource) -> None:
    sources.worn(FITBIT_ONLY, DAY, 700)
    days = pdays(FITBIT_ONLY, DAY)
    refresh.refresh_participant_day_summary(timescale, days, refresh.ValidDayRule())
    again = refresh.refresh_participant_day_summary(timescale, days, refresh.ValidDayRule())
    assert (again.deleted, again.inserted) == (1, 1)
    assert timescale.fetch("SELECT count(*) FROM wearables.participant_day_summary")[0][0] == 1


def test_cohort_week_per_study(sources: Sources, timescale: TimescaleResource) -> None:
    monday = date(2026, 11, 2)
    week = [monday + timedelta(days=i) for i in range(7)]
    sources.worn(FITBIT_ONLY, week[1], 700, steps_per_min=10)  # 7000 steps
    sources.worn(FITBIT_ONLY, week[2], 700, steps_per_min=5)  # 3500 steps
    sources.intraday(FITBIT_ONLY, "resting_heart_rate", [local_midnight(FITBIT_ONLY, week[1])], 58)
    sources.intraday(FITBIT_ONLY, "resting_heart_rate", [local_midnight(FITBIT_ONLY, week[2])], 62)
    sources.actigraph(ACTIGRAPH_ONLY, week[1], wear=700, steps=6000)
    everyone = [FITBIT_ONLY, ACTIGRAPH_ONLY, BOTH, INDIA, ENDED, NO_DEVICE]
    refresh.refresh_participant_day_summary(
        timescale, [d for p in everyone for d in pdays(p, *week)], refresh.ValidDayRule())

    rows = {r["study_id"]: r for r in refresh.refresh_cohort_week(timescale, monday)}

    # S1: F001, A001, B001 and N001 enrolled all week; E001 until Wednesday 4 November (3 days).
    assert rows["S1"] == {
        "study_id": "S1", "week_start": monday, "iso_year": 2026, "iso_week": 45, "enrolled_participants": 5,
        "participant_days": 31, "valid_days": 3, "median_steps": 6000.0, "mean_resting_hr": 60.0,
        "adherence_pct": pytest.approx(9.7),
    }
    assert (rows["S2"]["participant_days"], rows["S2"]["valid_days"], rows["S2"]["median_steps"],
            rows["S2"]["adherence_pct"]) == (7, 0, None, 0.0)
    # Re-running the week replaces it.
    refresh.refresh_cohort_week(timescale, monday)
    assert timescale.fetch("SELECT count(*) FROM wearables.cohort_week")[0][0] == 2
    with pytest.raises(ValueError, match="start on Monday"):
        refresh.refresh_cohort_week(timescale, monday + timedelta(days=1))


def test_unknown_participants_get_an_actionable_error(sources: Sources, timescale: TimescaleResource) -> None:
    with pytest.raises(refresh.UnknownParticipants, match="Z999.*roster sync"):
        refresh.refresh_intraday_hourly(timescale, [ParticipantDay(DAY, "Z999"), ParticipantDay(DAY, "F001")])


def _rows_read(plan: dict, relations: set[str]) -> int:
    """Rows the scans of ``relations`` produced or filtered away, over all loops of a JSON plan."""
    read = 0
    if plan.get("Relation Name") in relations:
        read += (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * plan["Actual Loops"]
    return read + sum(_rows_read(child, relations) for child in plan.get("Plans", []))


@pytest.mark.parametrize("statement", ["INSERT_HOURLY", "INSERT_SUMMARY", "OUT_OF_RULE"])
def test_rollups_read_only_the_rows_of_their_participant_days(
    statement: str, sources: Sources, timescale: TimescaleResource
) -> None:
    # A week of two participants; the statement targets one participant-day of one of them.
    for p in (FITBIT_ONLY, BOTH):
        for offset in range(-3, 4):
            sources.worn(p, DAY + timedelta(days=offset), 60)
    target = pdays(FITBIT_ONLY, DAY)
    start, end = local_midnight(FITBIT_ONLY, DAY), local_midnight(FITBIT_ONLY, DAY + timedelta(days=1))
    own, total = timescale.fetch(
        "SELECT count(*) FILTER (WHERE participant_id = 'F001' AND ts >= %s AND ts < %s), count(*) "
        "FROM wearables.fitbit_intraday", (start, end))[0]
    chunks = {r[0] for r in timescale.fetch(
        "SELECT chunk_name FROM timescaledb_information.chunks WHERE hypertable_name = 'fitbit_intraday'")}
    params = refresh.day_params(target) | refresh.metric_params() | {
        "min_wear_minutes": 600, "rule": "test", "rule_version": "test",
    }
    if statement == "OUT_OF_RULE":  # every sample "out of range": the check reads them all
        params |= {"lows": [2.0e12] * len(METRICS), "highs": [3.0e12] * len(METRICS)}
    with timescale.connect() as conn:
        plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + getattr(queries, statement), params).fetchone()[0]
        conn.rollback()

    assert 0 < own < total / 10
    assert _rows_read(plan[0]["Plan"], chunks) == own
