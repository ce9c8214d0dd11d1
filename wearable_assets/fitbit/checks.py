"""Checks that put the Fitbit auth state in front of the operator (the asset's Checks tab).

A participant whose grant died keeps the pipeline green (the others still load), so the
"someone must act" signal needs its own place: this check warns, listing who must re-consent
and why, until they are enrolled again.
"""


import dagster as dg

from wearable_assets.fitbit.assets import RAW_KEY
from wearable_assets.oauth.errors import reconsent_instruction
from wearable_assets.storage.resources import TimescaleResource


@dg.asset_check(asset=RAW_KEY, name="participants_need_reconsent", blocking=False,
                description="Warns while any Fitbit participant in the roster needs to consent again.")
def participants_need_reconsent(timescale: TimescaleResource) -> dg.AssetCheckResult:
    rows = timescale.fetch(
        """SELECT t.participant_id, t.provider, t.reconsent_reason, t.updated_at
             FROM wearables.oauth_tokens t JOIN wearables.participants p USING (participant_id)
            WHERE t.auth_state = 'needs_reconsent' AND p.in_roster AND p.fitbit_provider = t.provider
            ORDER BY 1"""
    )
    lines = [
        f"- {pid} ({provider}, {reason}, since {since:%Y-%m-%d %H:%M}Z): {reconsent_instruction(pid, provider, reason)}"
        for pid, provider, reason, since in rows
    ]
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "participants_needing_reconsent": len(rows),
            "who": dg.MetadataValue.md("\n".join(lines) or "nobody"),
        },
    )
