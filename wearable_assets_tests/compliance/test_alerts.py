"""The daily alert asset on the seeded cohort: one check result per participant, stored results
with their thresholds, and the webhook notification against a local HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import dagster as dg
import pytest

from wearable_assets.compliance import alerts
from wearable_assets.compliance.assets import ALERTS_KEY, RANGE_END, RANGE_START
from wearable_assets.compliance.config import AlertConfig
from wearable_assets.definitions import defs
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.compliance import cohort
from wearable_assets_tests.conftest import add_participants

IDS = sorted(p.participant_id for p in cohort.PEOPLE)
#: Worked out by hand for 2026-11-09 (yesterday 2026-11-08, now = its midnight UTC), thresholds 3 days / 48 h.
FLAGGED = {
    "A001": ["consecutive_non_valid_days", "no_recent_sync"],         # 6 bad days in a row, last sync 52 h ago
    "F001": [],                                                      # enrolment ended 11-07
    "H001": ["consecutive_non_valid_days", "no_recent_sync"],         # 4 in a row, last sync 90 h ago
    "N001": [],                                                      # no device
    "R001": ["consecutive_non_valid_days", "no_recent_sync", "needs_reconsent"],
    "V001": ["consecutive_non_valid_days"],                          # 4 in a row, last sync 42 h ago
}


class Receiver:
    """A webhook on 127.0.0.1 that answers the given statuses in turn (then 200) and keeps the bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secretpart"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def run_alerts(instance: dg.DagsterInstance, day: str = "2026-11-09") -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("compliance_alerts_job")
    return job.execute_in_process(
        instance=instance, tags={RANGE_START: IDS[0], RANGE_END: IDS[-1]},
        run_config={"ops": {"compliance__alerts": {"config": {"evaluated_on": day}}}})


def test_one_result_per_participant_stored_and_notified(timescale: TimescaleResource, seeded: dict,
                                                        instance: dg.DagsterInstance, receiver: Receiver,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("WEARABLES_ALERT_WEBHOOK_URL", receiver.url)
    add_participants(instance, *IDS)
    result = run_alerts(instance)
    assert result.success
    evaluations = {e.partition: e for e in result.get_asset_check_evaluations()}
    assert sorted(evaluations) == IDS  # exactly one per participant
    for pid, fired in FLAGGED.items():
        e = evaluations[pid]
        assert e.passed == (not fired), (pid, e.metadata)
        assert e.metadata["fired"].value == (", ".join(fired) or "none")
        assert e.metadata["threshold_non_valid_days"].value == 3
        assert e.severity == (dg.AssetCheckSeverity.ERROR if "needs_reconsent" in fired else dg.AssetCheckSeverity.WARN)
        assert e.metadata["study_invalid_yesterday"].value == (100.0 if pid != "N001" else "never")
    stored = timescale.fetch("SELECT participant_id, rule, fired, value, threshold FROM wearables.compliance_alerts "
                             "WHERE evaluated_on = '2026-11-09' ORDER BY 1, 2")
    assert len(stored) == len(IDS) * len(alerts.RULES)
    assert {pid for pid, rule, fired, *_ in stored if fired and rule in alerts.PARTICIPANT_RULES} == {
        pid for pid, f in FLAGGED.items() if f}
    assert ("V001", "consecutive_non_valid_days", True, 4.0, 3.0) in stored
    assert ("H001", "no_recent_sync", True, 90.0, 48.0) in stored
    assert ("V001", "no_recent_sync", False, 42.0, 48.0) in stored

    # one notification, with ids and counts only
    assert len(receiver.bodies) == 1
    text = receiver.bodies[0]["text"]
    assert set(receiver.bodies[0]) == {"text"}
    assert "4 of 6 participant(s) flagged" in text
    assert ">= 3 non-valid days in a row: 4 (A001, H001, R001, V001)" in text
    assert "token needs re-consent: 1 (R001)" in text
    assert "no device sync for > 48 h: 3 (A001, H001, R001)" in text
    assert "study C1: 100% of enrolled participant-days not valid yesterday" in text
    for private in ("gone_410", "wear min", "Europe/", "heart rate", "HTTP"):
        assert private not in text
    # the webhook URL is its credential: not in metadata, not in the logs
    assert all("secretpart" not in str(e.metadata) for e in evaluations.values())
    assert "secretpart" not in caplog.text

    # a re-run of the same day replaces its results
    assert run_alerts(instance).success
    assert len(timescale.fetch("SELECT 1 FROM wearables.compliance_alerts")) == len(IDS) * len(alerts.RULES)


@pytest.mark.parametrize("statuses, sent, attempts", [
    ([], True, 1), ([500], True, 2), ([503, 502], True, 3), ([429], True, 2), ([500, 500, 500, 500], False, 4),
    ([400], False, 1),
])
def test_webhook_retries(receiver: Receiver, statuses: list[int], sent: bool, attempts: int) -> None:
    config = AlertConfig(webhook_url=receiver.url, webhook_retries=3)
    for _ in range(3):  # several rounds on one receiver
        receiver.statuses = list(statuses)
        receiver.bodies.clear()
        delivery = alerts.notify({"text": "x"}, config, backoff_s=0.01)
        assert (delivery.sent, delivery.attempts) == (sent, attempts), delivery
        assert receiver.bodies == [{"text": "x"}] * attempts


def test_unreachable_webhook_does_not_fail_the_run(timescale: TimescaleResource, seeded: dict,
                                                   instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = Receiver()
    url = closed.url
    closed.close()
    monkeypatch.setenv("WEARABLES_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("WEARABLES_ALERT_WEBHOOK_RETRIES", "1")
    add_participants(instance, *IDS)
    result = run_alerts(instance)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(IDS)
    assert all(e.metadata["notification"].value.startswith("unreachable") for e in evaluations)
    assert len(timescale.fetch("SELECT 1 FROM wearables.compliance_alerts")) == len(IDS) * len(alerts.RULES)


def test_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEARABLES_ALERT_NON_VALID_DAYS", "5")
    monkeypatch.setenv("WEARABLES_ALERT_STUDY_INVALID_PCT", "150")
    with pytest.raises(ValueError, match="WEARABLES_ALERT_STUDY_INVALID_PCT='150' must be at least 0 and at most 100"):
        AlertConfig.from_env()
    monkeypatch.setenv("WEARABLES_ALERT_STUDY_INVALID_PCT", "20")
    assert AlertConfig.from_env().thresholds() == {"non_valid_days": 5, "no_sync_hours": 48.0, "study_invalid_pct": 20.0}
    assert ALERTS_KEY.to_user_string() == "compliance/alerts"


def test_the_daily_schedule_asks_for_every_participant(instance: dg.DagsterInstance) -> None:
    from datetime import datetime, timezone

    from wearable_assets.compliance.assets import daily_compliance_alerts

    tick = datetime(2026, 11, 9, 6, 0, tzinfo=timezone.utc)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
        assert isinstance(daily_compliance_alerts(context), dg.SkipReason)  # nobody in the partitions yet
    add_participants(instance, *IDS)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
        request = daily_compliance_alerts(context)
    assert isinstance(request, dg.RunRequest)
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (IDS[0], IDS[-1])
    assert request.run_config["ops"]["compliance__alerts"]["config"]["evaluated_on"] == "2026-11-09"
