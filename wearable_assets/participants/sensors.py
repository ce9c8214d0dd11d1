"""The roster sensor: keeps the dynamic ``participants`` partitions in step with the roster file.

A roster that cannot be applied fails the tick (red in the UI, the reason in its error) and
changes nothing: an unreadable file, a bad header or row, a change that would unlink the
devices of a participant who already has data, and a partition key added by hand that the
roster does not know. The sensor never forces; the operator fixes the file or runs
``wearable-assets roster sync --force``. A tick that changed something says what in its
skip message ("roster applied: 1 added (P006), ..."), so it differs from "roster unchanged".
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from wearable_assets import settings
from wearable_assets.participants.plan import sync_roster
from wearable_assets.partitions import (
    PARTICIPANTS_PARTITION_NAME,
    participant_partitions,
)
from wearable_assets.roster import RosterError, load_roster
from wearable_assets.storage.resources import TimescaleResource


@dg.sensor(
    name="roster_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Syncs the roster file into wearables.participants and the participants partitions; "
    "fails its tick (and applies nothing) on a bad roster or a change that would unlink devices.",
)
def roster_sensor(context: dg.SensorEvaluationContext, timescale: TimescaleResource) -> dg.SensorResult | dg.SkipReason:
    path = settings.roster_path()
    try:
        roster = load_roster(path)
    except OSError as exc:
        raise RosterError(f"roster not applied: cannot read {path}: {exc.strerror or exc}") from None
    except RosterError as exc:
        raise RosterError([f"roster not applied: {problem}" for problem in exc.problems]) from None
    existing = context.instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
    try:
        plan = sync_roster(timescale, roster, existing, date.today(), source=path.name)
    except RosterError as exc:
        raise RosterError([f"roster not applied: {problem}" for problem in exc.problems]) from None
    if plan.unchanged:
        return dg.SkipReason(f"roster unchanged ({len(roster)} participants, {len(existing)} partitions)")
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if plan.partitions.add:
        requests.append(participant_partitions.build_add_request(plan.partitions.add))
    if plan.partitions.remove:
        requests.append(participant_partitions.build_delete_request(plan.partitions.remove))
    message = f"roster applied: {plan.summary()}"
    context.log.info(message)
    return dg.SensorResult(skip_reason=message, dynamic_partitions_requests=requests)
