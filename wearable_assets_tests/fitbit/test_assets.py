"""The three Fitbit assets through Dagster: one participant-day, a ranged run with a revoked
participant, and no secrets in logs, events or metadata."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import pytest

from wearable_assets import plausibility
from wearable_assets.fitbit import assets as fitbit_assets
from wearable_assets.fitbit import ingest
from wearable_assets.fitbit import manifest as fitbit_manifest
from wearable_assets.fitbit.assets import intraday, intraday_parquet, raw_payloads
from wearable_assets.fitbit.checks import participants_need_reconsent
from wearable_assets.fitbit.resources import FitbitLegacyResource, GoogleHealthResource
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.rollups import checks, refresh
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.common import Fault
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.partition_events import check_results, partition_metadata

from .conftest import DAY, enrol_directly, google_resource

ASSETS = [raw_payloads, intraday, intraday_parquet]


def resources(google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource) -> dict[str, object]:
    return {"timescale": db, "lake": lake, "google_health": google,
            "fitbit_legacy": FitbitLegacyResource(client_id="", client_secret="", token_key=google.token_key)}


def materialization(result: dg.ExecuteInProcessResult, key: list[str], partition: str = f"{DAY}|P001") -> dict[str, Any]:
    """The partition's own metadata (its latest materialisation of the run)."""
    return partition_metadata(result, key)[partition]


def all_event_text(instance: dg.DagsterInstance, run_id: str) -> str:
    return "\n".join(json.dumps(dg.serialize_value(e), default=str) for e in instance.all_logs(run_id))


def test_materialize_one_participant_day_without_leaking_secrets(
    google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore, db: TimescaleResource,
    lake: LakeResource, instance: dg.DagsterInstance, caplog: pytest.LogCaptureFixture,
) -> None:
    tokens = enrol_directly(google_sim, google_store, "P001")["P001"]
    add_participants(instance, "P001")
    google_sim.state.expire_access_tokens("P001")  # force a refresh inside the run: new tokens to leak
    caplog.set_level(logging.DEBUG)
    result = dg.materialize(ASSETS + [participants_need_reconsent], partition_key=f"{DAY}|P001",
                            resources=resources(google, db, lake), instance=instance)
    assert result.success

    raw = materialization(result, ["fitbit", "raw_payloads"])
    loaded = materialization(result, ["fitbit", "intraday"])
    parquet = materialization(result, ["fitbit", "intraday_parquet"])
    assert raw["api_calls"] == google_sim.state.count_calls("/v4/") > 10
    assert raw["auth_state"] == "active" and raw["status"] == "ok"
    per_metric = loaded["rows_per_metric"]
    assert isinstance(per_metric, dict) and per_metric["heart_rate"] > 10000
    assert loaded["dagster/row_count"] == sum(per_metric.values())
    assert parquet["rows_per_metric"] == per_metric
    assert 90 < loaded["hr_completeness_pct"] <= 100
    assert loaded["time_range_start"] < loaded["time_range_end"]
    (db_rows,), = db.fetch("SELECT count(*) FROM wearables.fitbit_intraday")
    (lake_rows,) = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake.table_glob('fitbit_intraday')}')").fetchone()
    assert db_rows == lake_rows == loaded["dagster/row_count"]
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 3 and all(e.passed for e in evaluations)  # two outcome checks + re-consent

    # Secrets: the client secret, the token key, the enrolled tokens and the refreshed ones.
    assert google_sim.state.token_calls["refresh_token"] == 1
    secrets = [google.client_secret, google.token_key, tokens["access_token"], tokens["refresh_token"],
               *google_sim.state.access_tokens]
    haystacks = {
        "python logs": caplog.text,
        "dagster events": all_event_text(instance, result.run_id),
        "metadata": json.dumps([raw, loaded, parquet], default=str),
        "ingest_status": json.dumps(db.fetch("SELECT * FROM wearables.ingest_status"), default=str),
    }
    # The scan is only worth something if the logs really hold the run's traffic: Python logging
    # was captured at DEBUG during the run (urllib3 logs every request line, the token refresh
    # included), and Dagster's event log holds the asset's own log lines.
    http_lines = [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool"]
    assert sum(' /v4/' in line and 'HTTP/1.1"' in line for line in http_lines) == raw["api_calls"]
    token_path = urlsplit(google_sim.token_url).path
    assert any(f'"POST {token_path} HTTP/1.1" 200' in line for line in http_lines)
    assert all(line in caplog.text for line in http_lines)
    assert "fitbit/raw_payloads: 1 participant-day(s): 1 ok" in haystacks["dagster events"]
    # Libraries that log tokens at DEBUG stay pinned above it even with a DEBUG root logger.
    assert all(logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
               for name in ("oauthlib", "requests_oauthlib"))
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"


def test_ranged_run_records_reconsent_and_carries_on(
    google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore, db: TimescaleResource,
    lake: LakeResource, instance: dg.DagsterInstance,
) -> None:
    enrol_directly(google_sim, google_store, "P001", "P002")
    google_sim.state.revoke_refresh_tokens("P002")
    google_sim.state.expire_access_tokens("P002")
    add_participants(instance, "P001", "P002")
    result = dg.materialize(
        ASSETS + [participants_need_reconsent], resources=resources(google, db, lake), instance=instance,
        tags={"dagster/asset_partition_range_start": f"{DAY}|P001", "dagster/asset_partition_range_end": f"{DAY}|P002"},
    )
    assert result.success  # a dead grant is a person's job, not a pipeline failure
    # Each partition shows its own outcome, not the run's.
    raw = partition_metadata(result, ["fitbit", "raw_payloads"])
    assert {k: m["status"] for k, m in raw.items()} == {f"{DAY}|P001": "ok", f"{DAY}|P002": "needs_reconsent"}
    assert raw[f"{DAY}|P001"]["auth_state"] == "active"
    assert raw[f"{DAY}|P002"]["auth_state"] == "needs_reconsent (invalid_grant)"
    assert "wearable-assets enroll --participant P002" in raw[f"{DAY}|P002"]["detail"]
    loaded = partition_metadata(result, ["fitbit", "intraday"])
    assert loaded[f"{DAY}|P001"]["dagster/row_count"] > 10000 and "dagster/row_count" not in loaded[f"{DAY}|P002"]
    outcome = check_results(result, ["fitbit", "intraday"])
    assert outcome[f"{DAY}|P001"].passed
    assert not outcome[f"{DAY}|P002"].passed and outcome[f"{DAY}|P002"].severity == dg.AssetCheckSeverity.ERROR
    statuses = dict(db.fetch("SELECT participant_id, status FROM wearables.ingest_status"))
    assert statuses == {"P001": "ok", "P002": "needs_reconsent"}
    assert db.fetch("SELECT DISTINCT participant_id FROM wearables.fitbit_intraday") == [("P001",)]
    reconsent = check_results(result, ["fitbit", "raw_payloads"], "participants_need_reconsent")
    assert reconsent[f"{DAY}|P001"].passed and reconsent[f"{DAY}|P001"].metadata["needs_reconsent"].value == "no"
    check = reconsent[f"{DAY}|P002"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "wearable-assets enroll --participant P002" in str(check.metadata["needs_reconsent"].value)


def test_an_api_failure_fails_only_its_participant_day(
    google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore, db: TimescaleResource,
    lake: LakeResource, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch,
) -> None:
    enrol_directly(google_sim, google_store, "P001", "P002")
    add_participants(instance, "P001", "P002")
    quick = google_resource(google_sim, google.token_key, max_retries=1)
    # The simulator's faults hit the next requests of any user: fetch one participant at a time,
    # so that P001 is fetched first and its heart-rate call fails for good (two 503s = the retry
    # budget). test_concurrent_fetch.py runs the participants side by side.
    monkeypatch.setattr(fitbit_assets, "FETCH_THREADS", 1)
    google_sim.state.inject(Fault("/v4/users/me/dataTypes/heart-rate/dataPoints", kind="status", status=503, count=2))
    tags = {"dagster/asset_partition_range_start": f"{DAY}|P001", "dagster/asset_partition_range_end": f"{DAY}|P002"}
    result = dg.materialize(ASSETS, resources=resources(quick, db, lake), instance=instance, raise_on_error=False,
                            tags=tags)
    # The run goes on: P002 is landed AND loaded; P001 is red on its own partition.
    assert result.success
    fetched = check_results(result, ["fitbit", "raw_payloads"])
    assert fetched[f"{DAY}|P002"].passed
    failed = fetched[f"{DAY}|P001"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.description is not None and "api_error" in failed.description and "503" in failed.description
    assert partition_metadata(result, ["fitbit", "intraday"])[f"{DAY}|P001"]["status"] == "api_error"
    assert fitbit_manifest.read_manifest(lake, ParticipantDay(DAY, "P002"))["status"] == "ok"  # type: ignore[index]
    assert dict(db.fetch("SELECT participant_id, status FROM wearables.ingest_status")) == {
        "P001": "api_error", "P002": "ok"}
    assert db.fetch("SELECT DISTINCT participant_id FROM wearables.fitbit_intraday") == [("P002",)]

    # Re-running just the failed participant-day repairs it; P002 is untouched.
    before = db.fetch("SELECT count(*) FROM wearables.fitbit_intraday WHERE participant_id = 'P002'")
    again = dg.materialize(ASSETS, resources=resources(quick, db, lake), instance=instance,
                           partition_key=f"{DAY}|P001")
    assert check_results(again, ["fitbit", "intraday"])[f"{DAY}|P001"].passed
    assert dict(db.fetch("SELECT participant_id, status FROM wearables.ingest_status")) == {"P001": "ok", "P002": "ok"}
    assert db.fetch("SELECT count(*) FROM wearables.fitbit_intraday WHERE participant_id = 'P002'") == before



def test_implausible_steps_are_quarantined_with_the_reason_in_both_stores(
    google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore, db: TimescaleResource,
    lake: LakeResource, instance: dg.DagsterInstance,
) -> None:
    enrol_directly(google_sim, google_store, "P001")
    add_participants(instance, "P001")
    key, pday = f"{DAY}|P001", ParticipantDay(DAY, "P001")
    assert dg.materialize([raw_payloads], partition_key=key, resources=resources(google, db, lake),
                          instance=instance).success
    # The device sends -500 and 10^12 steps for two minutes: the payload exactly as the API returned it.
    manifest = fitbit_manifest.read_manifest(lake, pday)
    assert manifest is not None
    name = fitbit_manifest.stored_name(manifest, "steps.list.p000")
    payload = json.loads(lake.read_raw("fitbit", "P001", DAY, name))
    points = payload["dataPoints"]
    assert len(points) > 10
    points[0]["steps"]["count"], points[1]["steps"]["count"] = "-500", "1000000000000"
    bad_times = sorted(p["steps"]["interval"]["startTime"] for p in points[:2])
    plausible_sum = sum(float(p["steps"]["count"]) for p in points[2:])
    lake.land_raw("fitbit", "P001", DAY, name, payload)

    for _ in range(2):  # a re-load replaces the quarantine with the load, never duplicates it
        result = dg.materialize([intraday, intraday_parquet, checks.fitbit_values_plausible], partition_key=key,
                                resources=resources(google, db, lake), instance=instance)
        assert result.success

    # Not in the measurements, in the database or the lake; the rest of the day is.
    (steps_rows, steps_sum, lowest, highest), = db.fetch(
        "SELECT count(*), sum(value), min(value), max(value) FROM wearables.fitbit_intraday WHERE metric = 'steps'")
    assert (steps_rows, steps_sum) == (len(points) - 2, plausible_sum) and lowest >= 0 and highest <= 300
    lake_steps = duckdb.sql(f"SELECT count(*), sum(value) FROM read_parquet('{lake.table_glob('fitbit_intraday')}') "
                            "WHERE metric = 'steps'").fetchone()
    assert lake_steps == (len(points) - 2, plausible_sum)
    # Quarantined with the rule, its version and the reason.
    quarantined = db.fetch("SELECT participant_id, local_date, device, source, metric, value, rule, rule_version, "
                           "reason FROM wearables.quarantined_values ORDER BY value")
    rule = "0 <= steps <= 300 count"
    assert quarantined == [
        ("P001", DAY, "fitbit", "google_health", "steps", -500.0, rule, plausibility.RULE_VERSION,
         "-500 count is below the minimum of 0 count"),
        ("P001", DAY, "fitbit", "google_health", "steps", 1e12, rule, plausibility.RULE_VERSION,
         "1e+12 count is above the maximum of 300 count"),
    ]
    assert sorted(t.isoformat() for (t,) in db.fetch("SELECT ts FROM wearables.quarantined_values")) == [
        datetime.fromisoformat(t.replace("Z", "+00:00")).isoformat() for t in bad_times]
    lake_quarantine = duckdb.sql(
        f"SELECT metric, value, rule_version FROM read_parquet('{lake.table_glob(ingest.LAKE_QUARANTINE)}') "
        "ORDER BY value").fetchall()
    assert lake_quarantine == [("steps", -500.0, "1"), ("steps", 1e12, "1")]
    # Said in the load's metadata and status row, and by the check (which warns, never blocks).
    loaded = materialization(result, ["fitbit", "intraday"])
    assert loaded["quarantined_values"] == 2
    assert loaded["rows_per_metric"]["steps"] == len(points) - 2  # type: ignore[index]
    (detail,), = db.fetch("SELECT detail FROM wearables.ingest_status")
    assert "2 implausible value(s) quarantined" in detail and "steps=2" in detail
    check = check_results(result, ["fitbit", "intraday"], "values_plausible")[key]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "steps: 2 value(s) quarantined (-500..1e+12) by rule '0 <= steps <= 300 count' v1" in str(
        check.metadata["reasons"].value)
    # The partition says so too: flagged, not ok.
    assert loaded["status"] == "implausible"
    outcome = check_results(result, ["fitbit", "intraday"])[key]
    assert not outcome.passed and outcome.severity == dg.AssetCheckSeverity.WARN

    # The summary neither sums them nor calls the day complete.
    refresh.refresh_participant_day_summary(db, [pday], refresh.ValidDayRule())
    (steps, reason, state, count), = db.fetch(
        "SELECT steps, completeness_reason, fitbit_status, quarantined_values FROM wearables.participant_day_summary")
    assert (steps, reason, state, count) == (plausible_sum, "fitbit_implausible", "implausible", 2)


def test_a_simulated_day_has_nothing_to_quarantine(
    google: GoogleHealthResource, google_sim: GoogleHealthSimulator, google_store: TokenStore, db: TimescaleResource,
    lake: LakeResource, instance: dg.DagsterInstance,
) -> None:
    """The rules reject faults, not real days: a whole simulated cohort day of every metric passes."""
    enrol_directly(google_sim, google_store, "P001", "P002")
    add_participants(instance, "P001", "P002")
    result = dg.materialize(
        [raw_payloads, intraday, checks.fitbit_values_plausible], resources=resources(google, db, lake),
        instance=instance,
        tags={"dagster/asset_partition_range_start": f"{DAY}|P001", "dagster/asset_partition_range_end": f"{DAY}|P002"},
    )
    assert result.success
    metrics = {m for (m,) in db.fetch("SELECT DISTINCT metric FROM wearables.fitbit_intraday")}
    assert len(metrics) >= 8
    assert db.fetch("SELECT count(*) FROM wearables.quarantined_values") == [(0,)]
    plausible = check_results(result, ["fitbit", "intraday"], "values_plausible")
    assert sorted(plausible) == [f"{DAY}|P001", f"{DAY}|P002"] and all(e.passed for e in plausible.values())
