"""Fill a database the way production does: Fitbit assets against the Google Health simulator,
then the rollup assets. The API tests read what this wrote, so they exercise the real schema
and the real data shapes (irregular heart rate, DST days, off-wrist gaps), not a fixture of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import dagster as dg

from wearable_assets import settings
from wearable_assets.fitbit.assets import intraday, raw_payloads
from wearable_assets.fitbit.resources import FitbitLegacyResource, GoogleHealthResource
from wearable_assets.oauth.crypto import TokenCipher, generate_key
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME, to_multi_key
from wearable_assets.rollups.assets import intraday_hourly, participant_day_summary
from wearable_assets.roster import load_roster
from wearable_assets.storage.resources import LakeResource, TimescaleResource
from wearable_assets_dev.simulators.cohort import SyntheticCohort
from wearable_assets_dev.simulators.google_health import GoogleHealthSimulator

#: New York (DST ends on 2026-11-01: a 25-hour day) and Brisbane (UTC+10, no DST).
PARTICIPANTS = ("P001", "P002")
DAYS = (date(2026, 11, 1), date(2026, 11, 2))


def load(
    dsn: str,
    lake_dir: Path,
    participants: Sequence[str] = PARTICIPANTS,
    days: Sequence[date] = DAYS,
    hr_interval_s: float | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    """Materialise Fitbit raw payloads -> intraday -> hourly rollup + day summary for
    ``participants`` x ``days`` of the demo roster into ``dsn``.

    ``hr_interval_s`` puts heart rate on a fixed grid (1.0: 86,400 samples a day) instead of the
    simulator's realistic irregular sampling; the benchmark uses it for a worst case.
    """
    timescale = TimescaleResource(dsn=dsn)
    timescale.migrate()
    roster = [p for p in load_roster(settings.roster_path()) if p.participant_id in participants]
    upsert_participants(timescale, roster)
    key = generate_key()
    # The simulated clock is a week after the last day, so every day has fully synced.
    now = datetime.combine(max(days) + timedelta(days=7), time(), tzinfo=timezone.utc)
    cohort = SyntheticCohort.demo(now=now, hr_interval_s=hr_interval_s)
    with GoogleHealthSimulator(cohort) as sim:
        store = TokenStore(timescale, TokenCipher(key))
        for participant in roster:
            store.save(participant.participant_id, "google_health", sim.state.issue_tokens(participant.fitbit_user_id))
        resources = {
            "timescale": timescale,
            "lake": LakeResource(url=str(lake_dir)),
            "google_health": GoogleHealthResource(
                client_id=sim.client_id, client_secret=sim.client_secret, token_key=key,
                auth_url=sim.auth_url, token_url=sim.token_url, base_url=sim.base_url, backoff_s=0.05),
            "fitbit_legacy": FitbitLegacyResource(client_id="", client_secret="", token_key=key),
        }
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, list(participants))
            for pid in participants:
                for day in days:
                    partition = to_multi_key(ParticipantDay(day, pid))
                    result = dg.materialize(
                        [raw_payloads, intraday, intraday_hourly, participant_day_summary],
                        partition_key=partition, resources=resources, instance=instance,
                    )
                    if not result.success:
                        raise RuntimeError(f"loading {pid} {day} failed")
                    progress(f"{pid} {day}")
