"""From a CentrePoint DailyStatistics record to one typed row (TimescaleDB and parquet alike).

The rules that are easy to get wrong live here, with tests:

* **The day is the subject's local day, found from real instants first.** The documentation
  does not say what ``date`` means (its only example is ``2020-10-05T00:00:00+00:00``), and
  two readings fit it: (L) the local calendar date written with ``+00:00``, or (U) the
  subject's local midnight written as a UTC instant (``2026-11-01T14:00:00+00:00`` is
  2 November in Brisbane). No single rule on ``date`` alone is right under both for every zone
  from UTC-12 to UTC+14, so when the record carries its first/last epoch times (real UTC
  instants of data inside the day) the day is the participant's local date of the midpoint of
  those epochs: under either reading, for any offset, across DST changes.
  Only a record without epochs falls back to ``date``, read by what it can mean
  (``local_date``): a value that is exactly midnight in its own offset names the local date
  in its date part (reading L; under reading U only a UTC+0 zone gives a midnight, and then
  the two agree); any other value is reading U, an instant, placed on the nearest local
  midnight in the participant's zone (which also absorbs an hour of DST or time-zone-history
  disagreement); a value without offset is already local. ``date`` must still be readable
  when epochs are present, so a garbled record is kept aside rather than guessed at.
  The ``*Local`` fields are not used: the API suffixes them with ``+00:00`` whatever the zone.
* **Optional blocks may be absent.** Studies that configure no cut points, steps or METs get
  records without those blocks; the typed columns are then NULL (never 0), and the whole
  record is kept as JSON so fields the API adds later are not lost.
* **Two settings, two rows.** A subject can have several daily-statistics settings; the
  setting is part of the key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from wearable_assets import plausibility
from wearable_assets.storage import quarantine

#: A day counts as valid wear when at least this many minutes were worn (the usual
#: accelerometry rule of 10 hours).
VALID_DAY_WEAR_MINUTES = 600

#: Column order shared by the TimescaleDB table, the parquet files and the tests.
COLUMNS: tuple[str, ...] = (
    "participant_id",
    "local_date",
    "setting_id",
    "study_id",
    "subject_id",
    "setting_guid",
    "daily_statistic_id",
    "wear_minutes",
    "non_wear_minutes",
    "sleep_minutes",
    "total_counts",
    "steps",
    "mets",
    "calories",
    "sedentary_minutes",
    "light_minutes",
    "moderate_minutes",
    "vigorous_minutes",
    "mvpa_minutes",
    "cutpoint_algorithm",
    "is_valid_day",
    "first_epoch_utc",
    "last_epoch_utc",
    "record",
    "loaded_at",
)
KEY: tuple[str, ...] = ("participant_id", "local_date", "setting_id")
#: Natural key of a daily statistic in the lake: the Iceberg merge deduplicates staged rows on it.
LAKE_MERGE_KEY: tuple[str, ...] = ("subject_id", "local_date", "setting_id")

ARROW_SCHEMA = pa.schema(
    [
        ("participant_id", pa.string()),
        ("local_date", pa.date32()),
        ("setting_id", pa.int64()),
        ("study_id", pa.string()),
        ("subject_id", pa.string()),
        ("setting_guid", pa.string()),
        ("daily_statistic_id", pa.int64()),
        ("wear_minutes", pa.int32()),
        ("non_wear_minutes", pa.int32()),
        ("sleep_minutes", pa.int32()),
        ("total_counts", pa.int64()),
        ("steps", pa.int32()),
        ("mets", pa.float64()),
        ("calories", pa.float64()),
        ("sedentary_minutes", pa.int32()),
        ("light_minutes", pa.int32()),
        ("moderate_minutes", pa.int32()),
        ("vigorous_minutes", pa.int32()),
        ("mvpa_minutes", pa.int32()),
        ("cutpoint_algorithm", pa.string()),
        ("is_valid_day", pa.bool_()),
        ("first_epoch_utc", pa.timestamp("us", tz="UTC")),
        ("last_epoch_utc", pa.timestamp("us", tz="UTC")),
        ("record", pa.string()),  # JSON text: Athena stores JSON as string
        ("loaded_at", pa.timestamp("us", tz="UTC")),
    ]
)
assert tuple(ARROW_SCHEMA.names) == COLUMNS


_MIDNIGHT = datetime.min.time()


class RecordError(ValueError):
    """A record that cannot be attributed to a day; the message names the record."""


def parse_instant(text: str) -> datetime:
    """ISO 8601 as CentrePoint writes it: ``Z``, ``+00:00``, or naive; up to 7 fraction digits."""
    value = text.strip().replace("Z", "+00:00")
    main, dot, rest = value.partition(".")
    if dot:  # Python parses at most 6 fraction digits; CentrePoint sends 7
        digits = "".join(ch for ch in rest if ch.isdigit())
        value = f"{main}.{digits[:6]}{rest[len(digits):]}"
    return datetime.fromisoformat(value)


def local_date(record_date: str, tz: ZoneInfo) -> date:
    """The subject's civil day named by a ``date`` value alone (the fallback rule of the module
    docstring, used when a record has no epoch times)."""
    moment = parse_instant(record_date)
    if moment.tzinfo is None:  # naive = already local
        return (moment + timedelta(hours=12)).date()
    if moment.timetz().replace(tzinfo=None) == _MIDNIGHT:  # reading L (or U in a UTC+0 zone)
        return moment.date()
    return (moment.astimezone(tz) + timedelta(hours=12)).date()  # reading U: nearest local midnight


def date_readings(record_date: str, tz: ZoneInfo) -> set[date]:
    """Every local day ``date`` can name under the two readings (one day when they agree)."""
    moment = parse_instant(record_date)
    if moment.tzinfo is None:
        return {(moment + timedelta(hours=12)).date()}
    return {moment.date(), (moment.astimezone(tz) + timedelta(hours=12)).date()}


def epoch_bounds(record: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """First and last epoch of the record's data as UTC instants (top level, else inside
    ``epochAggregation``); None where the record has no such field. A value without offset is
    UTC, as the field names say (never the machine's zone)."""
    epoch = record.get("epochAggregation") or {}
    out: list[datetime | None] = []
    for name in ("firstEpochDateTimeUtc", "lastEpochDateTimeUtc"):
        text = record.get(name) or (epoch.get(name) if isinstance(epoch, dict) else None)
        if not text:
            out.append(None)
            continue
        moment = parse_instant(str(text))
        out.append(moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc))
    return out[0], out[1]


def epoch_local_date(first: datetime | None, last: datetime | None, tz: ZoneInfo) -> date | None:
    """The participant's local day holding the record's epochs: that of their midpoint, so a
    day whose edges straddle a zone disagreement still lands where most of its data is."""
    if first is None and last is None:
        return None
    low, high = first or last, last or first
    assert low is not None and high is not None
    return (low + (high - low) / 2).astimezone(tz).date()


def record_local_date(record: dict[str, Any], tz: ZoneInfo) -> date:
    """The participant's local day a DailyStatistics record belongs to (module docstring):
    from its epochs when it has them, else from ``date``. Raises ``KeyError`` when it has
    neither, ``ValueError``/``TypeError`` when a field present is unreadable."""
    raw_date = record.get("date")
    stated = local_date(str(raw_date), tz) if raw_date else None  # read even if unused: garbled = unattributed
    by_epochs = epoch_local_date(*epoch_bounds(record), tz)
    if by_epochs is not None:
        return by_epochs
    if stated is None:
        raise KeyError("date")
    return stated


def setting_number(guid: str | None) -> int:
    """A stable bigint for a daily-statistics setting GUID (its first 8 bytes, signed).

    The key column is a bigint project-wide; the GUID itself is kept in ``setting_guid``.
    A record without a setting (never seen in practice) gets 0.
    """
    if not guid:
        return 0
    try:
        return int.from_bytes(uuid.UUID(str(guid)).bytes[:8], "big", signed=True)
    except ValueError:
        raise RecordError(f"dailyStatisticsSettingId {guid!r} is not a GUID") from None


def _minutes(value: Any) -> int | None:
    return None if value is None else int(round(float(value)))


def _seconds_to_minutes(value: Any) -> int | None:
    return None if value is None else int(round(float(value) / 60))


def _first(block: Any) -> dict[str, Any] | None:
    """Cut-point blocks are documented as arrays but shown as objects in places; take either."""
    if isinstance(block, list):
        return block[0] if block and isinstance(block[0], dict) else None
    return block if isinstance(block, dict) else None


@dataclass(frozen=True)
class Intensity:
    algorithm: str
    sedentary: int | None
    light: int | None
    moderate: int | None
    vigorous: int | None
    mvpa: int | None


def intensity(record: dict[str, Any]) -> Intensity | None:
    """Wear-time minutes per intensity from the first cut-point block the study configures
    (Crouter, then Freedson, Evenson, Staudenmayer); None when it configures none."""
    if block := _first(record.get("crouterAggregations")):
        p = "wearFilteredVM"
        return Intensity(
            "crouter",
            *(_seconds_to_minutes(block.get(f"{p}{n}")) for n in ("Sedentary", "Light", "Moderate", "Vigorous", "MVPA")),
        )
    if block := _first(record.get("freedsonAggregations")):
        p = "wearFilteredVA"
        moderate = block.get(f"{p}Moderate")
        vigorous = None
        if block.get(f"{p}Vigorous") is not None or block.get(f"{p}VeryVigorous") is not None:
            vigorous = (block.get(f"{p}Vigorous") or 0) + (block.get(f"{p}VeryVigorous") or 0)
        mvpa = None if moderate is None and vigorous is None else (moderate or 0) + (vigorous or 0)
        return Intensity(
            "freedson",
            _seconds_to_minutes(block.get(f"{p}Sedentary")),
            _seconds_to_minutes(block.get(f"{p}Light")),
            _seconds_to_minutes(moderate),
            _seconds_to_minutes(vigorous),
            _seconds_to_minutes(mvpa),
        )
    for name, key, prefix in (
        ("evenson", "evensonAggregations", "wearFiltered"),
        ("staudenmayer", "staudenmayerAggregations", "wearFiltered"),
    ):
        if block := _first(record.get(key)):
            values = [block.get(f"{prefix}{n}") for n in ("Sedentary", "Light", "Moderate", "Vigorous", "MVPA")]
            return Intensity(name, *(_seconds_to_minutes(v) for v in values))
    return None


def _nested(record: dict[str, Any], *keys: str) -> Any:
    """First present value of ``block.field`` paths, e.g. ``("mavmAggregation.wearFilteredSteps", ...)``."""
    for path in keys:
        block, _, name = path.partition(".")
        value = (record.get(block) or {}).get(name)
        if value is not None:
            return value
    return None


def to_row(
    record: dict[str, Any], participant_id: str, tz: ZoneInfo, loaded_at: datetime
) -> dict[str, Any]:
    """One typed row (a dict over ``COLUMNS``) for a DailyStatistics record."""
    epoch = record.get("epochAggregation") or {}
    first, last = epoch_bounds(record)
    if not record.get("date") and first is None and last is None:
        raise RecordError(f"daily statistic {record.get('id')!r} of {participant_id} has no 'date' and no epoch times")
    wear = _minutes(epoch.get("wearMinutes"))
    cut = intensity(record)
    counts = epoch.get("wearFilteredVectorMagnitude")
    steps = _nested(record, "mavmAggregation.wearFilteredSteps", "uwfAggregation.wearFilteredSteps")
    return {
        "participant_id": participant_id,
        "local_date": record_local_date(record, tz),
        "setting_id": setting_number(record.get("dailyStatisticsSettingId")),
        "study_id": str(record.get("studyId", "")),
        "subject_id": str(record.get("subjectId", "")),
        "setting_guid": record.get("dailyStatisticsSettingId"),
        "daily_statistic_id": record.get("id"),
        "wear_minutes": wear,
        "non_wear_minutes": _minutes(epoch.get("nonWearMinutes")),
        "sleep_minutes": _minutes(epoch.get("sleepMinutes")),
        "total_counts": None if counts is None else int(round(float(counts))),
        "steps": None if steps is None else int(round(float(steps))),
        "mets": _nested(record, "hildebrandMetCalorieAggregation.wearMetsAverage",
                        "crouterYouthMetCalorieAggregation.wearMetsAverage"),
        "calories": _nested(record, "hildebrandMetCalorieAggregation.wearCalories",
                            "crouterYouthMetCalorieAggregation.wearCalories"),
        "sedentary_minutes": cut.sedentary if cut else None,
        "light_minutes": cut.light if cut else None,
        "moderate_minutes": cut.moderate if cut else None,
        "vigorous_minutes": cut.vigorous if cut else None,
        "mvpa_minutes": cut.mvpa if cut else None,
        "cutpoint_algorithm": cut.algorithm if cut else None,
        "is_valid_day": wear is not None and wear >= VALID_DAY_WEAR_MINUTES,
        "first_epoch_utc": first,
        "last_epoch_utc": last,
        "record": record,
        "loaded_at": loaded_at,
    }


def split_by_local_day(
    records: Iterable[dict[str, Any]], tz: ZoneInfo
) -> tuple[dict[date, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Raw records by local day (``record_local_date``), plus those that cannot be placed:
    no epochs and no ``date``, or an unreadable one (kept aside so they can be stored before
    anything fails)."""
    by_day: dict[date, list[dict[str, Any]]] = {}
    unattributed: list[dict[str, Any]] = []
    for record in records:
        try:
            by_day.setdefault(record_local_date(record, tz), []).append(record)
        except (KeyError, ValueError, TypeError, AttributeError):
            unattributed.append(record)
    return by_day, unattributed


def rows_by_day(
    records: Iterable[dict[str, Any]], participant_id: str, tz: ZoneInfo, loaded_at: datetime
) -> dict[date, list[dict[str, Any]]]:
    """Rows grouped by local day, sorted by setting. If the API repeats a (day, setting) the
    last record wins, so a day never holds two rows for one key. Implausible fields are
    quarantined (``screen``): NULL in the row, listed by ``quarantined``."""
    grouped: dict[date, dict[int, dict[str, Any]]] = {}
    for record in records:
        try:
            row = to_row(record, participant_id, tz, loaded_at)
        except (ValueError, TypeError, AttributeError) as exc:
            if isinstance(exc, RecordError):
                raise
            raise RecordError(f"daily statistic {record.get('id')!r} of {participant_id} is malformed: {exc}") from exc
        screen(row)
        grouped.setdefault(row["local_date"], {})[row["setting_id"]] = row
    return {day: [by_setting[k] for k in sorted(by_setting)] for day, by_setting in grouped.items()}


def as_tuples(rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows for binary ``COPY`` into TimescaleDB (psycopg dumps ``record`` as jsonb itself)."""
    return [tuple(r[c] for c in COLUMNS) for r in rows]


def as_arrow(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows as a pyarrow table with the fixed schema (so empty or all-NULL columns keep types)."""
    data = {c: [json.dumps(r[c], separators=(",", ":")) if c == "record" else r[c] for r in rows] for c in COLUMNS}
    return pa.Table.from_pydict(data, schema=ARROW_SCHEMA)


# --- plausibility --------------------------------------------------------------------------------
#: Key of the row dict under which ``screen`` keeps what it removed (not a column: ``as_tuples``
#: and ``as_arrow`` only read ``COLUMNS``).
QUARANTINED_KEY = "_quarantined"


def screen(row: dict[str, Any]) -> dict[str, Any]:
    """Apply the plausibility rules to a typed row, in place: implausible fields become NULL
    (what the table already means by "not measured", so rollups and the valid-day rule ignore
    them) and are kept under ``QUARANTINED_KEY``; ``is_valid_day`` follows the screened wear.
    ``record`` stays exactly as the API sent it."""
    removed = plausibility.screen_row(row)
    row[QUARANTINED_KEY] = removed
    if any(q.metric == "wear_minutes" for q in removed):
        row["is_valid_day"] = False
    return row


def quarantined(rows: Sequence[dict[str, Any]], source: str = "centrepoint") -> list[tuple[Any, ...]]:
    """The ``wearables.quarantined_values`` rows of ``rows`` (one participant-day's), in
    ``storage.quarantine.COLUMNS`` order, for ``quarantine.replace_day(..., "actigraph", ...)``
    in the transaction that replaces the day's rows."""
    out: list[tuple[Any, ...]] = []
    for row in rows:
        out += quarantine.rows(row["participant_id"], row["local_date"], "actigraph", source,
                               row.get(QUARANTINED_KEY, ()), row["loaded_at"], setting_id=row["setting_id"])
    return out
