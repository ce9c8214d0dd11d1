"""The writers and the Fitbit loader are plain Python; Dagster only wraps them.

A process that loads one participant-day must not import Dagster, the HTTP/OAuth stack or dlt
(the peak-RSS budget in docs/fitbit.md), and the Dagster resources must stay the same objects
as the plain classes with config fields on top.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from wearable_assets.storage.lake import Lake
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets.storage.timescale import Timescale

REPO = Path(__file__).resolve().parents[2]
#: What a loader process must not hold: Dagster, the fetch side (HTTP + OAuth + token
#: encryption), and dlt (imported only when the lake is written).
NOT_ON_THE_LOAD_PATH = ("dagster", "requests", "requests_oauthlib", "oauthlib", "cryptography", "dlt")


def test_loader_modules_import_without_dagster_http_oauth_or_dlt() -> None:
    code = (
        "import json, sys\n"
        "import wearable_assets.fitbit.ingest, wearable_assets.storage.timescale, wearable_assets.storage.lake\n"
        "import wearable_assets.participant_day\n"
        f"print(json.dumps(sorted(m for m in {NOT_ON_THE_LOAD_PATH!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_resources_are_the_plain_classes_with_the_same_arguments() -> None:
    # One implementation: the resource adds config fields, nothing else, and its defaults are
    # the plain constructor's.
    for resource, plain in ((TimescaleResource, Timescale), (LakeResource, Lake)):
        assert issubclass(resource, plain)
        params = {n: p.default for n, p in inspect.signature(plain.__init__).parameters.items() if n != "self"}
        fields = {n: (f.default if not f.is_required() else inspect.Parameter.empty)
                  for n, f in resource.model_fields.items()}
        assert fields == params
        own = {n for n, v in vars(resource).items() if inspect.isfunction(v) or isinstance(v, property)}
        assert not own & {n for n in vars(plain) if not n.startswith("__")}


def test_plain_timescale_writes_and_keeps_its_state(timescale: TimescaleResource) -> None:
    plain = Timescale(timescale.dsn)
    start = datetime(2026, 11, 1, 4, tzinfo=timezone.utc)
    rows = [("P1", "heart_rate", start + timedelta(seconds=i), 60.0, -240, "google_health", None) for i in range(5)]
    columns = ["participant_id", "metric", "ts", "value", "utc_offset_min", "source", "device"]
    assert plain.replace_rows("wearables.fitbit_intraday", where="participant_id = %s", params=["P1"],
                              columns=columns, rows=rows) == (0, 5)
    assert plain._migrated and plain._column_types
    assert timescale.fetch("SELECT count(*) FROM wearables.fitbit_intraday")[0][0] == 5
    assert "secret" not in repr(Timescale("postgresql://u:secret@127.0.0.1:1/db"))


def test_resource_keeps_migration_state_per_object(timescale: TimescaleResource) -> None:
    fresh = TimescaleResource(dsn=timescale.dsn)
    assert not fresh._migrated
    fresh.fetch("SELECT 1")
    assert fresh._migrated and not TimescaleResource(dsn=timescale.dsn)._migrated


def test_plain_lake_round_trips_a_raw_payload(lake: LakeResource) -> None:
    plain = Lake(lake.url)
    key = plain.land_raw("fitbit", "P1", date(2026, 11, 1), "page", b'{"a": 1}')
    assert lake.read_raw("fitbit", "P1", date(2026, 11, 1), "page") == b'{"a": 1}'
    assert key == lake.raw_key("fitbit", "P1", date(2026, 11, 1), "page")
