"""The roster sensor: keeps the dynamic ``participants`` partitions in step with the roster file."""

from __future__ import annotations

from datetime import date

import dagster as dg

from wearable_assets import settings
from wearable_assets.participants.sync import partition_changes, upsert_participants
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME, participant_partitions
from wearable_assets.roster import RosterError, load_roster
from wearable_assets.storage.resources import TimescaleResource


@dg.sensor(
    name="roster_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Syncs the roster file into wearables.participants and the participants partitions.",
)
def roster_sensor(context: dg.SensorEvaluationContext, timescale: TimescaleResource) -> dg.SensorResult | dg.SkipReason:
    try:
        roster = load_roster(settings.roster_path())
    except (OSError, RosterError) as exc:
        # A broken roster must not silently drop participants: keep the partitions as they are.
        return dg.SkipReason(f"roster not applied: {exc}")
    upsert_participants(timescale, roster)
    existing = context.instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
    changes = partition_changes(roster, existing, date.today())
    if not changes.add and not changes.remove:
        return dg.SkipReason(f"roster unchanged ({len(existing)} participants)")
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if changes.add:
        requests.append(participant_partitions.build_add_request(changes.add))
    if changes.remove:
        requests.append(participant_partitions.build_delete_request(changes.remove))
    context.log.info("roster: adding %s, removing %s", changes.add, changes.remove)
    return dg.SensorResult(dynamic_partitions_requests=requests)
