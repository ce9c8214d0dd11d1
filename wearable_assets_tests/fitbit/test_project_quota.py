"""Google Health's per-project quota holds for whole ranged runs, counted at the simulator.

The project's quota is shrunk to ``QUOTA`` requests per ``WINDOW_S`` at the simulator (which
answers 429 ``RESOURCE_EXHAUSTED`` with a ``QuotaFailure`` on ``project:...`` past it) and in the
resource (``project_requests`` / ``project_window_s``, what ``WEARABLES_GOOGLE_PROJECT_*`` set);
everything else, from the asset through the resource's limiters to the HTTP request, is the
production path. Each step's process gets the quota divided by the ``google_health_api`` pool's
limit, read from the Dagster instance when the step starts. Unthrottled, one run sends more than
the quota in a window (a test shows the simulator refusing); throttled, the simulator's
log shows no window over the budget, not one 429, and every participant-day landed and loaded
its rows; two steps in two processes, with the pool at two slots, stay within the quota together.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg
import pytest
import requests

from wearable_assets import rate_limits, settings
from wearable_assets.fitbit import google_health
from wearable_assets.fitbit.assets import intraday, raw_payloads
from wearable_assets.fitbit.resources import FitbitLegacyResource, GoogleHealthResource
from wearable_assets.oauth.store import TokenStore
from wearable_assets.orchestration.pools import GOOGLE_HEALTH_POOL, apply_pool_limits
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.common import most_in_any_window
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator
from wearable_assets_dev.simulators.google_health.oauth import project_subject
from wearable_assets_tests.concurrency import Outcome, errors, run_rounds
from wearable_assets_tests.conftest import add_participants
from wearable_assets_tests.partition_events import partition_metadata

from .conftest import DAY, FAST, CountingLimits, enrol_directly, google_resource

QUOTA = 40  # requests per window for the whole project, at the simulator and in the resource
WINDOW_S = 3.0
GOOGLE = ["P001", "P002", "P004"]  # P003 (legacy, enrolment ended) is in the range and skipped
DAYS = (DAY, DAY + timedelta(days=1))
ROUNDS = 3
RAW = ["fitbit", "raw_payloads"]


def run_tags(first: str = "P001", last: str = "P004") -> dict[str, str]:
    return {"dagster/asset_partition_range_start": f"{DAYS[0]}|{first}",
            "dagster/asset_partition_range_end": f"{DAYS[-1]}|{last}"}


def resources(google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource) -> dict[str, object]:
    return {"timescale": db, "lake": lake, "google_health": google,
            "fitbit_legacy": FitbitLegacyResource(client_id="", client_secret="", token_key=google.token_key)}


def materialize(google: GoogleHealthResource, db: TimescaleResource, lake: LakeResource,
                instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.ExecuteInProcessResult:
    return dg.materialize([raw_payloads, intraday], resources=resources(google, db, lake), instance=instance,
                          tags=tags)


@pytest.fixture
def quota_sim(google_sim: GoogleHealthSimulator, google_store: TokenStore, instance: dg.DagsterInstance
              ) -> GoogleHealthSimulator:
    google_sim.state.set_project_quota(QUOTA, WINDOW_S)
    enrol_directly(google_sim, google_store, *GOOGLE)
    add_participants(instance, "P001", "P002", "P003", "P004")
    return google_sim


def project_hits(sim: GoogleHealthSimulator, status: int | None = None) -> list[float]:
    return [h.at for h in sim.state.project_quota.hits(project_subject(sim.client_id), status)]


def assert_within_the_quota(sim: GoogleHealthSimulator, budget: int = QUOTA) -> None:
    refused = [c for c in sim.state.calls if c.status == 429]
    assert refused == [], f"{len(refused)} requests were refused (429)"
    assert most_in_any_window(project_hits(sim, 200), WINDOW_S) <= budget


def assert_every_day_landed(result_statuses: dict[str, str], db: TimescaleResource) -> None:
    """Every Google participant-day fetched and loaded, with rows in TimescaleDB."""
    assert result_statuses == {f"{d}|{p}": "skipped" if p == "P003" else "ok"
                               for d in DAYS for p in ("P001", "P002", "P003", "P004")}
    loaded = {f"{day}|{pid}": (status, rows) for pid, day, status, rows in db.fetch(
        "SELECT participant_id, local_date, status, rows_loaded FROM wearables.ingest_status "
        "WHERE source = 'google_health'")}
    assert set(loaded) == {f"{d}|{p}" for d in DAYS for p in GOOGLE}
    assert all(status == "ok" and rows > 0 for status, rows in loaded.values()), loaded
    stored = dict(db.fetch("SELECT participant_id, count(*) FROM wearables.fitbit_intraday GROUP BY 1"))
    assert sorted(stored) == GOOGLE and min(stored.values()) > 0


def test_the_simulator_answers_googles_documented_quota_error(quota_sim: GoogleHealthSimulator) -> None:
    token = quota_sim.state.issue_tokens("P001")["access_token"]
    other = quota_sim.state.issue_tokens("P002")["access_token"]  # another user: the same project
    url = f"{quota_sim.base_url}/users/me/pairedDevices"
    answers = [requests.get(url, headers={"Authorization": f"Bearer {t}"}, timeout=10)
               for t in [token, other] * (QUOTA // 2) + [other]]
    assert [a.status_code for a in answers] == [200] * QUOTA + [429]
    error = answers[-1].json()["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    failure = next(d for d in error["details"] if d["@type"].endswith("google.rpc.QuotaFailure"))
    assert failure["violations"][0]["subject"] == project_subject(quota_sim.client_id)
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= WINDOW_S
    assert len(project_hits(quota_sim, 429)) == 1


def test_without_the_project_limiter_a_run_goes_over_the_quota(
    quota_sim: GoogleHealthSimulator, token_key: str, db: TimescaleResource, lake: LakeResource,
    instance: dg.DagsterInstance,
) -> None:
    """The run is big enough to matter: with the resource's project budget far above the
    simulator's, the simulator has to refuse requests (the 429 handling still lands them)."""
    apply_pool_limits(instance, {GOOGLE_HEALTH_POOL: 1}, overwrite=True)
    google = google_resource(quota_sim, token_key, project_requests=10**6, project_window_s=WINDOW_S)
    result = materialize(google, db, lake, instance, run_tags())
    assert result.success
    assert project_hits(quota_sim, 429), "the unthrottled run stayed within the quota: the test proves nothing"


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_ranged_run_stays_within_the_project_quota(
    round_: int, quota_sim: GoogleHealthSimulator, token_key: str, db: TimescaleResource, lake: LakeResource,
    instance: dg.DagsterInstance,
) -> None:
    apply_pool_limits(instance, {GOOGLE_HEALTH_POOL: 1}, overwrite=True)  # this step may spend all of it
    google = google_resource(quota_sim, token_key, project_requests=QUOTA, project_window_s=WINDOW_S)

    result = materialize(google, db, lake, instance, run_tags())

    assert result.success
    assert_within_the_quota(quota_sim)
    assert len(project_hits(quota_sim)) > 2 * QUOTA  # the run needed several windows
    statuses = {k: m["status"] for k, m in partition_metadata(result, RAW).items()}
    assert_every_day_landed(statuses, db)


def test_a_step_takes_its_share_of_the_pool(
    quota_sim: GoogleHealthSimulator, token_key: str, db: TimescaleResource, lake: LakeResource,
    instance: dg.DagsterInstance,
) -> None:
    """With the pool at two slots (set on the instance, as an operator would), the step's process
    spends at most half the quota in any window."""
    apply_pool_limits(instance, {GOOGLE_HEALTH_POOL: 2}, overwrite=True)
    google = google_resource(quota_sim, token_key, project_requests=QUOTA, project_window_s=WINDOW_S)

    result = materialize(google, db, lake, instance, run_tags())

    assert result.success
    assert_within_the_quota(quota_sim, QUOTA // 2)
    assert (f"{google_health.PROVIDER}:project", QUOTA // 2, WINDOW_S, None) in rate_limits._LIMITERS
    assert_every_day_landed({k: m["status"] for k, m in partition_metadata(result, RAW).items()}, db)


def _fetch_share(ref: Any, sim: dict[str, str], worker: int, round_: int) -> dict[str, Any]:
    """One step in its own process, on the shared instance: P001-P002 or P004."""
    first, last = ("P001", "P002") if worker == 0 else ("P004", "P004")
    google = GoogleHealthResource(client_id=sim["client_id"], client_secret=sim["client_secret"],
                                  token_key=settings.required(settings.TOKEN_KEY_ENV, "set by the test"),
                                  auth_url=sim["auth_url"], token_url=sim["token_url"], base_url=sim["base_url"],
                                  project_requests=QUOTA, project_window_s=WINDOW_S,
                                  **FAST)  # type: ignore[arg-type]
    with dg.DagsterInstance.from_ref(ref) as instance:
        result = dg.materialize([raw_payloads], instance=instance, tags=run_tags(first, last), resources=resources(
            google, TimescaleResource(dsn=settings.timescale_dsn()), LakeResource(url=settings.lake_url())))
        statuses = {k: m["status"] for k, m in partition_metadata(result, RAW).items()}
    return {"success": result.success, "statuses": statuses}


def test_two_steps_in_two_processes_stay_within_the_quota_together(
    quota_sim: GoogleHealthSimulator, token_key: str, db: TimescaleResource, lake: LakeResource,
    instance: dg.DagsterInstance,
) -> None:
    """Two processes, each with half the quota (the pool has two slots): both run at once and
    the project's requests, counted together at the simulator, never exceed the quota."""
    apply_pool_limits(instance, {GOOGLE_HEALTH_POOL: 2}, overwrite=True)
    sim = {"client_id": quota_sim.client_id, "client_secret": quota_sim.client_secret,
           "auth_url": quota_sim.auth_url, "token_url": quota_sim.token_url, "base_url": quota_sim.base_url}

    counted = quota_sim.state.rate_limits = CountingLimits(300, 60.0)

    def before(round_: int) -> None:
        quota_sim.state.project_quota.reset()
        quota_sim.state.reset_calls()
        counted.hits.clear()

    def check(round_: int, outcomes: list[Outcome]) -> None:
        assert errors(outcomes) == []
        assert [o.value["success"] for o in outcomes] == [True, True]
        statuses = outcomes[0].value["statuses"] | outcomes[1].value["statuses"]
        assert statuses == {f"{d}|{p}": "ok" for d in DAYS for p in GOOGLE}
        assert_within_the_quota(quota_sim)
        assert len(project_hits(quota_sim, 200)) > 2 * QUOTA
        # The two processes were sending at the same time (the pool let both steps run): each
        # one's requests began before the other's ended.
        spans = [(min(t for u in users for t in counted.hits[u]), max(t for u in users for t in counted.hits[u]))
                 for users in (("P001", "P002"), ("P004",))]
        assert max(start for start, _ in spans) < min(end for _, end in spans), spans

    run_rounds(_fetch_share, (instance.get_ref(), sim), workers=2, rounds=ROUNDS, before=before, check=check)


def test_the_quota_comes_from_the_settings(google_sim: GoogleHealthSimulator, token_key: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    google = google_resource(google_sim, token_key)
    assert google.project_budget() == (120_000 // 4, 60.0)  # Google's quota; the project's pool limit
    monkeypatch.setenv(settings.GOOGLE_PROJECT_REQUESTS_ENV, str(QUOTA))
    monkeypatch.setenv(settings.GOOGLE_PROJECT_WINDOW_ENV, str(WINDOW_S))
    assert google.project_budget(2) == (QUOTA // 2, WINDOW_S)
    monkeypatch.setenv(settings.GOOGLE_PROJECT_REQUESTS_ENV, "lots")
    with pytest.raises(settings.SettingError, match="WEARABLES_GOOGLE_PROJECT_REQUESTS='lots' is not a whole number"):
        google.project_budget(2)
