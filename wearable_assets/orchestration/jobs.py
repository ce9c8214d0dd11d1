"""The job the daily schedule runs: both devices' assets and their participant-day rollups.

One run carries a rectangle of participant-days (a date range x a participant range) through
every step — fetch, land, load to TimescaleDB and the lake, checks, rollups — so the process
start-up (~several seconds per run) is paid once per batch, not once per participant-day.
``cohort_week`` is weekly-partitioned, so it cannot share these runs; automation rolls it up
when a day of its week changes.
"""

from __future__ import annotations

import dagster as dg

from wearable_assets.partitions import participant_day_partitions

PARTICIPANT_DAY_SELECTION = dg.AssetSelection.groups("fitbit", "actigraph") | dg.AssetSelection.assets(
    "intraday_hourly", "participant_day_summary"
)

participant_day_job = dg.define_asset_job(
    "participant_day_job",
    selection=PARTICIPANT_DAY_SELECTION,
    partitions_def=participant_day_partitions,
    description="Fitbit and ActiGraph participant-days end to end (sources, lake, checks, rollups).",
)
