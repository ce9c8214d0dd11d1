"""The compliance vocabulary: the one state each participant-day cell shows, and why each exists.

Plain Python (no database), shared by the SQL in ``queries.py``, the API's schema, the dashboard
(which receives it from the API) and the alert rules, so the words never drift apart.
"""

from __future__ import annotations

#: Every state a cell (per device or combined) can be in, with what a coordinator does about it.
STATES: dict[str, str] = {
    "valid": "worn for at least the valid-day rule's minutes",
    "worn_below_rule": "worn, but for fewer minutes than the valid-day rule; the device synced after the day ended",
    "not_worn": "no wear recorded although the device synced after the day ended",
    "not_synced_yet": "the device has not uploaded that day yet (or the day is not ingested/summarised yet)",
    "needs_reconsent": "the participant's authorisation is gone: they must consent again",
    "provider_error": "the provider's API failed for that day; the pipeline retries it",
    "implausible_data": "values outside physiological bounds: the day is held back from the rollups",
    "outside_enrolment": "the day is outside the participant's enrolment window",
    "no_device": "the participant has no device of that kind in the roster",
}

#: When several devices disagree and none is valid, the combined cell shows the most actionable
#: state first (a person can fix it), then the ones that may resolve themselves, then not worn.
#: The same order as the participant-day summary's overall reason (sql/004_rollups.sql).
COMBINED_ORDER = (
    "needs_reconsent",
    "provider_error",
    "implausible_data",
    "not_synced_yet",
    "worn_below_rule",
    "not_worn",
)

DEVICES = ("fitbit", "actigraph")

#: Cells that count against adherence: enrolled days with a device that were not valid.
NOT_VALID = tuple(s for s in STATES if s not in ("valid", "outside_enrolment", "no_device"))
