#!/usr/bin/env bash
# One participant-day through `dagster asset materialize`, as an operator would run it, against the
# simulators and the local TimescaleDB, with a throw-away DAGSTER_HOME and lake. Fails if the run
# fails or if no rows landed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
export PATH="$BIN:$PATH"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DAGSTER_HOME="$work/dagster_home" WEARABLES_LAKE_URL="$work/lake"
mkdir -p "$DAGSTER_HOME" && cp dagster.yaml "$DAGSTER_HOME/"

day=$(date -u -d yesterday +%F)
participant=P001
select="fitbit/raw_payloads,fitbit/intraday,fitbit/intraday_parquet"
select+=",actigraph/daily_statistics_parquet,actigraph/daily_statistics"
select+=",intraday_hourly,participant_day_summary"

wearable-assets roster sync
python -m wearable_assets_dev simulators exec -- \
  dagster asset materialize -m wearable_assets.definitions --select "$select" --partition "$day|$participant"

python - "$day" "$participant" <<'PY'
import sys
from wearable_assets import settings
from wearable_assets.storage.timescale import Timescale

day, pid = sys.argv[1:]
db = Timescale(dsn=settings.timescale_dsn())
checks = {
    "fitbit_intraday": "SELECT count(*) FROM wearables.fitbit_intraday f JOIN wearables.participants p USING (participant_id) "
                       "WHERE participant_id = %(p)s AND (f.ts AT TIME ZONE p.time_zone)::date = %(d)s",
    "actigraph_daily_statistics": "SELECT count(*) FROM wearables.actigraph_daily_statistics WHERE participant_id = %(p)s AND local_date = %(d)s",
    "intraday_hourly": "SELECT count(*) FROM wearables.intraday_hourly WHERE participant_id = %(p)s",
    "participant_day_summary": "SELECT count(*) FROM wearables.participant_day_summary WHERE participant_id = %(p)s AND local_date = %(d)s",
}
counts = {name: db.fetch(q, {"p": pid, "d": day})[0][0] for name, q in checks.items()}
print("ci-smoke rows for", pid, day, counts)
empty = [name for name, n in counts.items() if n == 0]
if empty:
    sys.exit(f"ci-smoke: no rows in {', '.join(empty)}")
PY
