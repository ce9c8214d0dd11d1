"""Checks that put the Fitbit auth state in front of the operator (the asset's Checks tab).

A participant whose grant died keeps the pipeline green (the others still load), so the
"someone must act" signal needs its own place: this check warns on each participant-day of a
participant who must re-consent, with why and the command to run, until they are enrolled again.

One result per participant-day (``outcomes.report_checks``), like every check on a participant-day
asset. An unpartitioned check result on this asset also made Dagster look up the asset's data
versions over the run's partitions to find its target materialisation: ~18 s per ranged run
with 1,000 participants (the benchmark's daily tick), for a roster-wide list nobody reads per run.
"""

from typing import Any

import dagster as dg

from wearable_assets.fitbit.assets import RAW_KEY
from wearable_assets.oauth.errors import reconsent_instruction
from wearable_assets.outcomes import report_checks
from wearable_assets.partitions import participant_day_partitions, partition_days
from wearable_assets.storage.resources import TimescaleResource


@dg.asset_check(asset=RAW_KEY, name="participants_need_reconsent", blocking=False,
                partitions_def=participant_day_partitions,
                description="Warns on each participant-day of a Fitbit participant in the roster who needs to "
                "consent again, with the reason and the command to run.")
def participants_need_reconsent(context: dg.AssetCheckExecutionContext, timescale: TimescaleResource) -> Any:
    days = partition_days(context)  # type: ignore[arg-type]
    rows = timescale.fetch(
        """SELECT t.participant_id, t.provider, t.reconsent_reason, t.updated_at
             FROM wearables.oauth_tokens t JOIN wearables.participants p USING (participant_id)
            WHERE t.auth_state = 'needs_reconsent' AND p.in_roster AND p.fitbit_provider = t.provider
              AND t.participant_id = ANY(%s)""",
        (sorted({d.participant_id for d in days}),),
    )
    needs = {pid: f"{provider}, {reason}, since {since:%Y-%m-%d %H:%M}Z: {reconsent_instruction(pid, provider, reason)}"
             for pid, provider, reason, since in rows}
    results = {d.key: (d.participant_id not in needs, {"needs_reconsent": needs.get(d.participant_id, "no")})
               for d in days}
    yield from report_checks(context, RAW_KEY, "participants_need_reconsent", results,
                             severity=dg.AssetCheckSeverity.WARN)
