"""Source rows written straight into the real TimescaleDB tables, so the rollup SQL can be tested
on exact, hand-checkable inputs (the end-to-end tests go through the real source assets)."""

import json
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from wearable_assets import plausibility
from wearable_assets.participants.sync import upsert_participants
from wearable_assets.roster import Participant
from wearable_assets.storage import quarantine
from wearable_assets.storage.resources import TimescaleResource

INTRADAY_COLUMNS = ["participant_id", "metric", "ts", "value", "utc_offset_min", "source", "device"]

FITBIT_ONLY = Participant("F001", "S1", "America/New_York", date(2026, 1, 1), None, "google_health", "F001")
ACTIGRAPH_ONLY = Participant("A001", "S1", "Australia/Brisbane", date(2026, 1, 1), centrepoint_study_id="9",
                             centrepoint_subject_id="901")
BOTH = Participant("B001", "S1", "Europe/London", date(2026, 1, 1), None, "fitbit_legacy", "B001", "9", "902")
INDIA = Participant("K001", "S2", "Asia/Kolkata", date(2026, 1, 1), None, "google_health", "K001")
ENDED = Participant("E001", "S1", "America/Los_Angeles", date(2026, 1, 1), date(2026, 11, 4), "google_health", "E001")
NO_DEVICE = Participant("N001", "S1", "UTC", date(2026, 1, 1))
PARTICIPANTS = [FITBIT_ONLY, ACTIGRAPH_ONLY, BOTH, INDIA, ENDED, NO_DEVICE]


def local_midnight(p: Participant, day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(p.time_zone))


def minutes_of(p: Participant, day: date, first_minute: int, count: int) -> list[datetime]:
    start = local_midnight(p, day)
    return [start + timedelta(minutes=first_minute + m) for m in range(count)]


class Sources:
    """Writes source rows for one test, the way the source assets' tables hold them."""

    def __init__(self, timescale: TimescaleResource) -> None:
        self.timescale = timescale

    def participants(self, *people: Participant) -> None:
        upsert_participants(self.timescale, list(people))

    def intraday(self, p: Participant, metric: str, stamps: Iterable[datetime], value: float | Iterable[float]) -> None:
        values = [value] * 10**6 if isinstance(value, (int, float)) else list(value)
        rows = [(p.participant_id, metric, ts, float(v), None, p.fitbit_provider or "google_health", None)
                for ts, v in zip(stamps, values)]
        with self.timescale.connect() as conn:
            self.timescale.copy_rows(conn, "wearables.fitbit_intraday", INTRADAY_COLUMNS, rows)
            conn.commit()

    def worn(self, p: Participant, day: date, minutes: int, hr: float = 70.0, steps_per_min: float = 10.0) -> None:
        """``minutes`` minutes of heart rate (2 samples each) and steps from local 08:00."""
        stamps = minutes_of(p, day, 8 * 60, minutes)
        self.intraday(p, "heart_rate", stamps + [t + timedelta(seconds=30) for t in stamps], hr)
        self.intraday(p, "steps", stamps, steps_per_min)

    def status(self, p: Participant, day: date, source: str, status: str, *,
               last_sync: datetime | None = None, detail: str | None = None) -> None:
        self.timescale.execute(
            "INSERT INTO wearables.ingest_status (participant_id, local_date, source, status, detail, last_device_sync) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (p.participant_id, day, source, status, detail, last_sync),
        )

    def actigraph(self, p: Participant, day: date, wear: int, *, total_counts: int = 250_000, steps: int | None = 6000,
                  record_date: str | None = None, first_epoch: datetime | None = None,
                  last_epoch: datetime | None = None, setting_id: int = 1, **extra: Any) -> None:
        midnight = local_midnight(p, day)
        record = {"date": record_date or midnight.astimezone(ZoneInfo("UTC")).isoformat()}
        first = first_epoch or midnight + timedelta(hours=7)
        last = last_epoch or first + timedelta(minutes=max(wear, 1) - 1)
        columns = {
            "participant_id": p.participant_id, "local_date": day, "setting_id": setting_id,
            "study_id": p.centrepoint_study_id, "subject_id": p.centrepoint_subject_id, "wear_minutes": wear,
            "non_wear_minutes": 1440 - wear, "sleep_minutes": extra.get("sleep_minutes", 420),
            "mvpa_minutes": extra.get("mvpa_minutes", 35), "total_counts": total_counts, "steps": steps,
            "is_valid_day": wear >= 600, "first_epoch_utc": first, "last_epoch_utc": last,
            "record": json.dumps(record),
        }
        names = list(columns)
        self.timescale.execute(
            f"INSERT INTO wearables.actigraph_daily_statistics ({', '.join(names)}) "
            f"VALUES ({', '.join(['%s'] * len(names))})",
            [columns[n] for n in names],
        )

    def quarantined(self, p: Participant, day: date, device: str, metric: str, values: Iterable[float],
                    *, setting_id: int | None = None) -> None:
        """Values a load quarantined, with the rule's own text and reason (``plausibility``)."""
        rule = (plausibility.FITBIT_RANGES if device == "fitbit" else plausibility.ACTIGRAPH_RANGES)[metric]
        source = "centrepoint" if device == "actigraph" else p.fitbit_provider or "google_health"
        stamps = minutes_of(p, day, 12 * 60, 10**4) if device == "fitbit" else [None] * 10**4
        found = [plausibility.Quarantined(metric, ts, float(v), rule.text(metric), rule.reason(float(v)))
                 for ts, v in zip(stamps, values)]
        with self.timescale.connect() as conn:
            quarantine.replace_day(self.timescale, conn, p.participant_id, day, device,
                                   quarantine.rows(p.participant_id, day, device, source, found,
                                                   datetime.now(ZoneInfo("UTC")), setting_id))
            conn.commit()

    def sleep(self, p: Participant, day: date, stages: list[tuple[str, int]], *, short: bool = False) -> None:
        """Consecutive stages (name, minutes) ending at local 07:00 of ``day`` (the wake date)."""
        end = local_midnight(p, day) + timedelta(hours=7)
        start = end - timedelta(minutes=sum(m for _, m in stages))
        with self.timescale.connect() as conn:
            for stage, minutes in stages:
                conn.execute(
                    "INSERT INTO wearables.fitbit_sleep_stages (participant_id, sleep_date, log_id, stage, start_ts, "
                    "end_ts, is_short, is_main_sleep, source) VALUES (%s, %s, 'L1', %s, %s, %s, %s, true, %s)",
                    (p.participant_id, day, stage, start, start + timedelta(minutes=minutes), short,
                     p.fitbit_provider),
                )
                start += timedelta(minutes=minutes)
            conn.commit()


def summary(timescale: TimescaleResource, participant_id: str, day: date) -> dict[str, Any]:
    with timescale.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM wearables.participant_day_summary WHERE participant_id = %s AND local_date = %s",
                    (participant_id, day))
        row = cur.fetchone()
        assert row is not None, f"no summary row for {participant_id} {day}"
        return dict(zip([d.name for d in cur.description], row))

