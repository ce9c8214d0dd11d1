"""A cohort seeded straight into the wearables tables with every compliance state, per device and
combined, and the states a coordinator must see for it (worked out by hand from the rows below,
using the valid-day rule of 600 wear minutes)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from wearable_assets.oauth.crypto import TokenCipher, generate_key
from wearable_assets.oauth.store import TokenStore
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.rollups import refresh
from wearable_assets.roster import Participant
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.rollups.sources import Sources, local_midnight

FIRST = date(2026, 11, 2)   # a Monday: the window is exactly ISO week 45
LAST = date(2026, 11, 8)
DAYS = [FIRST + timedelta(days=i) for i in range(7)]
STUDY = "C1"
OTHER_STUDY = "C2"

BOTH = Participant("V001", STUDY, "Europe/London", date(2026, 10, 1), None, "google_health", "V001", "9", "901")
FITBIT = Participant("F001", STUDY, "America/New_York", date(2026, 11, 3), date(2026, 11, 7), "google_health", "F001")
LEGACY = Participant("R001", STUDY, "Europe/Berlin", date(2026, 10, 1), None, "fitbit_legacy", "R001")
HEART = Participant("H001", STUDY, "UTC", date(2026, 10, 1), None, "google_health", "H001")
ACTI = Participant("A001", STUDY, "Australia/Brisbane", date(2026, 10, 1), None, None, None, "9", "902")
NONE = Participant("N001", OTHER_STUDY, "UTC", date(2026, 10, 1))
PEOPLE = [BOTH, FITBIT, LEGACY, HEART, ACTI, NONE]

NS, OE, ND = "not_synced_yet", "outside_enrolment", "no_device"

#: (participant, day) -> (combined, fitbit, actigraph), for every day of the window.
EXPECTED: dict[tuple[str, date], tuple[str, str, str]] = {}


def _expect(p: Participant, states: list[tuple[str, str, str]]) -> None:
    for day, triple in zip(DAYS, states, strict=True):
        EXPECTED[(p.participant_id, day)] = triple


_expect(BOTH, [("valid", "valid", "worn_below_rule"), (NS, "worn_below_rule", NS), ("valid", "provider_error", "valid"),
               ("needs_reconsent", "needs_reconsent", "provider_error"), ("worn_below_rule", "worn_below_rule", "not_worn"),
               (NS, NS, NS), (NS, NS, NS)])
_expect(FITBIT, [(OE, OE, OE), ("valid", "valid", ND), ("worn_below_rule", "worn_below_rule", ND),
                 ("not_worn", "not_worn", ND), (NS, NS, ND), ("provider_error", "provider_error", ND), (OE, OE, OE)])
_expect(LEGACY, [("needs_reconsent", "needs_reconsent", ND)] * 7)
_expect(HEART, [("implausible_data", "implausible_data", ND), ("implausible_data", "implausible_data", ND),
                ("valid", "valid", ND), (NS, NS, ND), (NS, NS, ND), (NS, NS, ND), (NS, NS, ND)])
_expect(ACTI, [("valid", ND, "valid"), ("not_worn", ND, "not_worn"), ("implausible_data", ND, "implausible_data"),
               ("needs_reconsent", ND, "needs_reconsent"), ("worn_below_rule", ND, "worn_below_rule"),
               (NS, ND, NS), (NS, ND, NS)])
_expect(NONE, [(ND, ND, ND)] * 7)

#: Every state appears at least once, combined and per device.
ALL_STATES = {s for triple in EXPECTED.values() for s in triple}


def after(p: Participant, day: date, hours: int = 30) -> datetime:
    """A device sync ``hours`` after the participant's local midnight of ``day`` (after the day ended)."""
    return (local_midnight(p, day) + timedelta(hours=hours)).astimezone(timezone.utc)


def seed(timescale: TimescaleResource) -> dict[str, Any]:
    """Write the cohort's rows, summarise every participant-day but the one the rollup refuses
    (H001's first day: heart rate out of bounds), and return the token store used."""
    s = Sources(timescale)
    s.participants(*PEOPLE)
    d = DAYS
    # V001: Fitbit + ActiGraph
    s.worn(BOTH, d[0], 700)
    s.status(BOTH, d[0], "google_health", "ok", last_sync=after(BOTH, d[0]))
    s.actigraph(BOTH, d[0], 300)
    s.status(BOTH, d[0], "centrepoint", "ok", last_sync=after(BOTH, d[0]))
    s.worn(BOTH, d[1], 300)
    s.status(BOTH, d[1], "google_health", "ok", last_sync=after(BOTH, d[1]))
    s.status(BOTH, d[2], "google_health", "api_error", detail="HTTP 503 from the provider")
    s.actigraph(BOTH, d[2], 700)
    s.status(BOTH, d[2], "centrepoint", "ok", last_sync=after(BOTH, d[2]))
    s.status(BOTH, d[3], "google_health", "needs_reconsent", detail="invalid_grant")
    s.status(BOTH, d[3], "centrepoint", "api_error", detail="HTTP 500")
    s.worn(BOTH, d[4], 200)
    s.status(BOTH, d[4], "google_health", "ok", last_sync=after(BOTH, d[4]))
    s.actigraph(BOTH, d[4], 0, total_counts=0, steps=0)
    s.status(BOTH, d[4], "centrepoint", "ok", last_sync=after(BOTH, d[4]))
    # F001: Fitbit only, enrolled 11-03 .. 11-07
    s.worn(FITBIT, d[1], 650)
    s.status(FITBIT, d[1], "google_health", "ok", last_sync=after(FITBIT, d[1]))
    s.worn(FITBIT, d[2], 200)
    s.status(FITBIT, d[2], "google_health", "ok", last_sync=after(FITBIT, d[2]))
    s.status(FITBIT, d[3], "google_health", "no_data", last_sync=after(FITBIT, d[3]))
    s.worn(FITBIT, d[4], 100)
    s.status(FITBIT, d[4], "google_health", "ok", last_sync=after(FITBIT, d[4], hours=12))  # before the day ended
    s.status(FITBIT, d[5], "google_health", "api_error", detail="HTTP 500 INTERNAL")
    # R001: legacy Fitbit, dead since the API's 410; one day was tried, the others cannot be
    s.status(LEGACY, d[0], "fitbit_legacy", "needs_reconsent", detail="gone_410")
    # H001: implausible heart rate on two days (one refused by the rollup, one summarised), one valid day
    s.worn(HEART, d[0], 700, hr=300.0)
    s.status(HEART, d[0], "google_health", "ok", last_sync=after(HEART, d[0]))
    s.worn(HEART, d[1], 700, hr=20.0)
    s.status(HEART, d[1], "google_health", "ok", last_sync=after(HEART, d[1]))
    s.worn(HEART, d[2], 700)
    s.status(HEART, d[2], "google_health", "ok", last_sync=after(HEART, d[2]))
    # A001: ActiGraph only
    s.actigraph(ACTI, d[0], 700)
    s.status(ACTI, d[0], "centrepoint", "ok", last_sync=after(ACTI, d[0]))
    s.actigraph(ACTI, d[1], 0, total_counts=0, steps=0)
    s.status(ACTI, d[1], "centrepoint", "ok", last_sync=after(ACTI, d[1]))
    # 1600 wear minutes in a day: the load sets the field NULL and quarantines the value, as records.py does
    s.actigraph(ACTI, d[2], 1600)
    timescale.execute("UPDATE wearables.actigraph_daily_statistics SET wear_minutes = NULL, non_wear_minutes = NULL "
                      "WHERE participant_id = %s AND local_date = %s", (ACTI.participant_id, d[2]))
    s.quarantined(ACTI, d[2], "actigraph", "wear_minutes", [1600], setting_id=1)
    s.status(ACTI, d[2], "centrepoint", "ok", last_sync=after(ACTI, d[2]))
    s.status(ACTI, d[3], "centrepoint", "needs_reconsent", detail="HTTP 403 from CentrePoint")
    s.actigraph(ACTI, d[4], 400)
    s.status(ACTI, d[4], "centrepoint", "ok", last_sync=after(ACTI, d[4]))

    store = TokenStore(timescale, TokenCipher(generate_key()))
    for p in (BOTH, FITBIT, HEART):
        store.save(p.participant_id, "google_health", {"access_token": f"a-{p.participant_id}", "expires_in": 3600})
    store.save(LEGACY.participant_id, "fitbit_legacy", {"access_token": "a-R001", "expires_in": 3600})
    store.mark_needs_reconsent(LEGACY.participant_id, "fitbit_legacy", "gone_410", "HTTP 410 Gone")

    # what the loaders record: rows loaded on the days that have data
    timescale.execute("""
        UPDATE wearables.ingest_status s SET rows_loaded = 1
          FROM wearables.participants p
         WHERE p.participant_id = s.participant_id AND s.status = 'ok'
           AND CASE WHEN s.source = 'centrepoint'
                    THEN EXISTS (SELECT 1 FROM wearables.actigraph_daily_statistics a
                                  WHERE a.participant_id = s.participant_id AND a.local_date = s.local_date)
                    ELSE EXISTS (SELECT 1 FROM wearables.fitbit_intraday i
                                  WHERE i.participant_id = s.participant_id
                                    AND (i.ts AT TIME ZONE p.time_zone)::date = s.local_date) END""")
    days = [ParticipantDay(day, p.participant_id) for p in PEOPLE for day in DAYS
            if (p.participant_id, day) != (HEART.participant_id, d[0])]
    refresh.refresh_intraday_hourly(timescale, days)
    refresh.refresh_participant_day_summary(timescale, days, refresh.ValidDayRule())
    return {"store": store}
