"""One participant-day's landed payloads, loaded: into TimescaleDB and the lake, with its status row.

The assets call these functions once per participant-day of a (possibly ranged) run; fetching
and landing the payloads is ``landing``'s job. This module imports neither Dagster nor an HTTP
or OAuth client (a test keeps it so): a process that only loads a participant-day should not
hold them in memory.

What is read (``manifest`` holds the layout): per participant-day, a ``_manifest`` at the
participant-day's deterministic key names the current fetch, its payloads
(``fetch=<UTC time>/<provider>.<request>.p<page>.json.gz``) and its outcome: ``ok``,
``needs_reconsent`` or ``api_error``. Loaders only load ``ok``
manifests; for the others they leave previously loaded rows untouched (data fetched before a
grant was revoked is still valid) and the status row says what happened.

Both loads hold the participant-day's lock (``Timescale.participant_day_lock``, source
``fitbit``, the same one ``landing.land_day`` holds) from reading the manifest to the end of the
write: two overlapping loads of a participant-day take turns (two DELETE + COPY transactions
would otherwise collide on the unique index), and a load never reads payloads that a concurrent
fetch is pruning. A payload the manifest names that is missing anyway (deleted by hand, lost)
is a ``MissingPayload`` naming the fix.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyarrow as pa

from wearable_assets import plausibility
from wearable_assets.fitbit import pgcopy, screened
from wearable_assets.fitbit.canonical import (
    INTRADAY_COLUMNS,
    INTRADAY_TABLE,
    SLEEP_COLUMNS,
    SLEEP_SESSION_COLUMNS,
    SLEEP_SESSION_TABLE,
    SLEEP_TABLE,
    Batch,
    DayWindow,
    IntradayRow,
    ParsedDay,
    Payload,
    stream_batches,
    stream_rows,
)
from wearable_assets.fitbit.decoding import decode_json
from wearable_assets.fitbit.google_health import parse as google_health_parse
from wearable_assets.fitbit.legacy import parse as legacy_parse
from wearable_assets.fitbit.manifest import RAW_SOURCE, read_manifest, stored_name
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.roster import Participant
from wearable_assets.storage import ingest_status, quarantine
from wearable_assets.storage.lake import Lake, PartitionTable
from wearable_assets.storage.timescale import Timescale

PARSERS = {"google_health": google_health_parse.parse_payload, "fitbit_legacy": legacy_parse.parse_payload}
LAKE_INTRADAY = "fitbit_intraday"
LAKE_SLEEP = "fitbit_sleep_stages"
LAKE_SLEEP_SESSIONS = "fitbit_sleep_sessions"
#: The participant-day's values the plausibility rules kept out of ``LAKE_INTRADAY``.
LAKE_QUARANTINE = "fitbit_quarantined_values"


@dataclass
class DayOutcome:
    """What happened to one participant-day in one asset (feeds metadata and ingest_status)."""

    key: str
    provider: str | None
    status: str  # ok | no_data | needs_reconsent | api_error | skipped
    detail: str = ""
    api_calls: int = 0
    rows_per_metric: dict[str, int] = field(default_factory=dict)
    sleep_stages: int = 0
    sleep_sessions: int = 0
    hr_completeness_pct: float | None = None
    time_range: tuple[datetime, datetime] | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)  # per metric, outside the plausibility rules

    @property
    def rows(self) -> int:
        return sum(self.rows_per_metric.values())

    def as_metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "provider": self.provider, "status": self.status}
        if self.detail:
            out["detail"] = self.detail
        if self.api_calls:
            out["api_calls"] = self.api_calls
        if self.rows_per_metric or self.status in ("ok", "no_data"):
            out["rows"] = self.rows
            out["sleep_stages"] = self.sleep_stages
            out["sleep_sessions"] = self.sleep_sessions
        if self.hr_completeness_pct is not None:
            out["hr_completeness_pct"] = self.hr_completeness_pct
        if self.time_range:
            out["time_range"] = [t.isoformat() for t in self.time_range]
        if self.dropped:
            out["dropped"] = self.dropped
        if self.quarantined:
            out["quarantined"] = self.quarantined
            out["plausibility_rule_version"] = plausibility.RULE_VERSION
        return out


# --- landed payloads -----------------------------------------------------------------------
class MissingPayload(FileNotFoundError):
    """A payload named by the participant-day's manifest is not in the lake."""


def _payloads(lake: Lake, pday: ParticipantDay, manifest: dict[str, Any]) -> Iterator[Payload]:
    """Landed payloads one at a time (a heart-rate day is tens of MB of JSON: never all at once).
    Decoding is left to the parser (``Payload.document``), with the same error naming the payload."""
    for name in manifest["payloads"]:
        stored = stored_name(manifest, name)
        where = lake.raw_key(RAW_SOURCE, pday.participant_id, pday.day, stored)
        try:
            body = lake.read_raw(RAW_SOURCE, pday.participant_id, pday.day, stored)
        except FileNotFoundError:
            raise MissingPayload(
                f"{manifest['provider']} payload {name} named by the manifest of {pday.key} (fetch "
                f"{manifest.get('fetch') or '-'}) is missing at {where}: re-materialize fitbit/raw_payloads "
                f"for partition {pday.key} to fetch the day again, then load it"
            ) from None
        what = f"{manifest['provider']} payload {name} of {pday.key}"
        yield Payload(name, body, functools.partial(decode_json, what=what, where=where))


def _parsed_day(pday: ParticipantDay, manifest: dict[str, Any]) -> ParsedDay:
    return ParsedDay(window=DayWindow.of(pday.day, manifest["time_zone"]), participant_id=pday.participant_id,
                     source=manifest["provider"])


def open_landed(lake: Lake, pday: ParticipantDay,
                manifest: dict[str, Any]) -> tuple[ParsedDay, Iterator[IntradayRow]]:
    """The canonical rows of an ``ok`` manifest, as a lazy stream (reads the lake, writes
    nothing). ``day`` holds the sleep stages and the summary once the stream is exhausted."""
    day = _parsed_day(pday, manifest)
    return day, stream_rows(day, PARSERS[manifest["provider"]], _payloads(lake, pday, manifest))


def open_landed_batches(lake: Lake, pday: ParticipantDay,
                        manifest: dict[str, Any]) -> tuple[ParsedDay, Iterator[Batch]]:
    """``open_landed`` in columns (what the TimescaleDB load encodes to binary COPY)."""
    day = _parsed_day(pday, manifest)
    return day, stream_batches(day, PARSERS[manifest["provider"]], _payloads(lake, pday, manifest))


def _screened_batches(lake: Lake, pday: ParticipantDay, manifest: dict[str, Any], load: str
                      ) -> tuple[screened.ScreenedDay, Iterator[Batch], Callable[[], None]]:
    """The day's plausible batches, with its ``ParsedDay`` and ``BatchScreen`` (complete once the
    batches are exhausted), and ``keep``, to call after a successful load: from the other load's
    parse when it kept one (``screened``), else parsed here and offered to the other load. A load
    never takes its own earlier parse: run again, it reads the landed payloads again."""
    day_key = screened.key(lake.raw_key(RAW_SOURCE, pday.participant_id, pday.day, ""), pday, manifest)
    other = "lake" if load == "timescale" else "timescale"
    kept = screened.SCREENED.take((*day_key, other))
    if kept is not None:
        return kept, iter(kept.batches), lambda: None
    parsed, raw = open_landed_batches(lake, pday, manifest)
    day = screened.ScreenedDay(parsed, plausibility.BatchScreen())
    return day, screened.keeping(day.screen.screen(raw), day), lambda: screened.SCREENED.keep((*day_key, load), day)


# --- ingest_status ----------------------------------------------------------------------
def record_fetch_failure(timescale: Timescale, pday: ParticipantDay, outcome: DayOutcome) -> None:
    with timescale.connect() as conn:
        # rows_loaded left out: the rows of an earlier load stay, and so does their count.
        ingest_status.record(conn, pday.participant_id, pday.day, outcome.provider or "google_health",
                             outcome.status, detail=outcome.detail, api_calls=outcome.api_calls)
        conn.commit()


# --- loads ------------------------------------------------------------------------------
def _summary(pday: ParticipantDay, manifest: dict[str, Any], parsed: ParsedDay,
             screen: plausibility.BatchScreen) -> DayOutcome:
    """The outcome of a load: row counts are what was stored (quarantined values excluded)."""
    quarantined = screen.counts()
    stored = {m: n - quarantined.get(m, 0) for m, n in parsed.rows_per_metric().items()}
    stored = {m: n for m, n in stored.items() if n}
    status = "ok" if stored or parsed.sleep or parsed.sleep_sessions else "no_data"
    notes = list(parsed.notes)
    if quarantined:
        notes.append(f"{sum(quarantined.values())} implausible value(s) quarantined (plausibility rules "
                     f"v{plausibility.RULE_VERSION}): " + ", ".join(f"{m}={n}" for m, n in quarantined.items()))
    if parsed.daily_totals:
        notes.append("provider daily totals: " + ", ".join(f"{k}={v:g}" for k, v in sorted(parsed.daily_totals.items())))
    return DayOutcome(
        key=pday.key,
        provider=manifest["provider"],
        status=status,
        detail="; ".join(notes),
        api_calls=int(manifest.get("api_calls", 0)),
        rows_per_metric=stored,
        sleep_stages=len(parsed.sleep),
        sleep_sessions=len(parsed.sleep_sessions),
        hr_completeness_pct=parsed.hr_completeness(),
        time_range=parsed.time_range(),
        dropped=dict(parsed.dropped),
        quarantined=quarantined,
    )


def _loadable_manifest(lake: Lake, pday: ParticipantDay) -> dict[str, Any] | DayOutcome:
    """The manifest of a participant-day whose landing is ``ok``; otherwise the outcome that
    says why there is nothing to load (not landed, or the fetch failed)."""
    manifest = read_manifest(lake, pday)
    if manifest is None:
        return DayOutcome(pday.key, None, "skipped", "no raw payloads landed: materialize fitbit/raw_payloads first")
    if manifest["status"] != "ok":
        return DayOutcome(pday.key, manifest.get("provider"), manifest["status"],
                          manifest.get("detail") or "", api_calls=int(manifest.get("api_calls", 0)))
    return manifest


def _copy_stream(day: ParsedDay, batches: Iterable[Batch]) -> Iterator[bytes]:
    """A complete binary COPY stream of the batches, one chunk per batch as it is parsed."""
    yield pgcopy.HEADER
    for batch in batches:
        yield pgcopy.encode(batch, day.participant_id, day.source)
    yield pgcopy.TRAILER


def load_timescale(timescale: Timescale, lake: Lake, pday: ParticipantDay) -> DayOutcome:
    """Replace the participant-day in TimescaleDB from its landed payloads, in ONE transaction:
    intraday rows of ``[D, D+1)`` local, sleep stages and sleep sessions of wake date D, the day's
    quarantined values, and the status row.

    Values outside the plausibility rules are split off each batch with numpy masks
    (``plausibility.BatchScreen``) on their way to the COPY and written to
    ``wearables.quarantined_values`` instead, with the rule and the reason.

    Rows stream from the parser straight into the binary COPY, payload by payload, so parsing
    runs while the server inserts; they are encoded column-wise (``pgcopy``), never as tuples.
    The parsed day is then handed to ``load_lake`` in the same process (``screened``), or taken
    from it if the lake was loaded first.
    A payload that fails to parse aborts the COPY and the transaction rolls back: the
    participant-day keeps exactly what it had before. Runs under the participant-day's lock
    (module docstring)."""
    with timescale.participant_day_lock(RAW_SOURCE, pday.participant_id, pday.day):
        return _load_timescale(timescale, lake, pday)


def _load_timescale(timescale: Timescale, lake: Lake, pday: ParticipantDay) -> DayOutcome:
    manifest = _loadable_manifest(lake, pday)
    if isinstance(manifest, DayOutcome):
        return manifest
    day, batches, keep = _screened_batches(lake, pday, manifest, "timescale")
    parsed, screen = day.parsed, day.screen
    window = parsed.window
    with timescale.connect() as conn:
        with conn.transaction():
            timescale.replace_binary(
                INTRADAY_TABLE, where="participant_id = %s AND ts >= %s AND ts < %s",
                params=[pday.participant_id, window.start, window.end], columns=INTRADAY_COLUMNS,
                chunks=_copy_stream(parsed, batches), conn=conn,
            )
            quarantine.replace_day(timescale, conn, pday.participant_id, pday.day, "fitbit",
                                   _quarantine_rows(pday, parsed.source, screen))
            timescale.replace_rows(
                SLEEP_TABLE, where="participant_id = %s AND sleep_date = %s",
                params=[pday.participant_id, pday.day], columns=SLEEP_COLUMNS, rows=parsed.sleep, conn=conn,
            )
            timescale.replace_rows(
                SLEEP_SESSION_TABLE, where="participant_id = %s AND sleep_date = %s",
                params=[pday.participant_id, pday.day], columns=SLEEP_SESSION_COLUMNS, rows=parsed.sleep_sessions,
                conn=conn,
            )
            outcome = _summary(pday, manifest, parsed, screen)
            ingest_status.record(conn, pday.participant_id, pday.day, manifest["provider"], outcome.status,
                                 detail=outcome.detail, rows_loaded=outcome.rows + outcome.sleep_stages,
                                 api_calls=outcome.api_calls, last_device_sync=parsed.last_device_sync,
                                 time_zone=manifest["time_zone"])
    keep()
    return outcome


INTRADAY_SCHEMA = pa.schema([
    ("participant_id", pa.string()), ("metric", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
    ("value", pa.float64()), ("utc_offset_min", pa.int16()), ("source", pa.string()), ("device", pa.string()),
    ("local_date", pa.date32()),
])
SLEEP_SCHEMA = pa.schema([
    ("participant_id", pa.string()), ("sleep_date", pa.date32()), ("log_id", pa.string()), ("stage", pa.string()),
    ("start_ts", pa.timestamp("us", tz="UTC")), ("end_ts", pa.timestamp("us", tz="UTC")), ("is_short", pa.bool_()),
    ("is_main_sleep", pa.bool_()), ("source", pa.string()),
])
SLEEP_SESSION_SCHEMA = pa.schema([
    ("participant_id", pa.string()), ("sleep_date", pa.date32()), ("log_id", pa.string()),
    ("start_ts", pa.timestamp("us", tz="UTC")), ("end_ts", pa.timestamp("us", tz="UTC")),
    ("is_main_sleep", pa.bool_()), ("sleep_type", pa.string()), ("state", pa.string()),
    ("stages_status", pa.string()), ("info_code", pa.int16()), ("minutes_asleep", pa.int32()),
    ("stage_rows", pa.int32()), ("source", pa.string()),
])
assert tuple(SLEEP_SESSION_SCHEMA.names) == SLEEP_SESSION_COLUMNS
#: ``wearables.quarantined_values`` in the lake (same columns, one participant-day per folder).
QUARANTINE_SCHEMA = pa.schema([
    ("participant_id", pa.string()), ("local_date", pa.date32()), ("device", pa.string()), ("source", pa.string()),
    ("metric", pa.string()), ("ts", pa.timestamp("us", tz="UTC")), ("setting_id", pa.int64()),
    ("value", pa.float64()), ("rule", pa.string()), ("rule_version", pa.string()), ("reason", pa.string()),
    ("loaded_at", pa.timestamp("us", tz="UTC")),
])
assert tuple(QUARANTINE_SCHEMA.names) == quarantine.COLUMNS


def intraday_arrow(batches: Iterable[Batch], participant_id: str, source: str, day: date) -> pa.Table:
    """The lake's intraday table of a participant-day, built column by column from the parser's
    batches (no Python object per sample). ``local_date`` is the participant-day itself: Athena
    users filter on it, and Iceberg tables are replaced by it."""
    parts = []
    for batch in batches:
        n = len(batch)
        if not n:
            continue
        parts.append(pa.table([
            pa.repeat(participant_id, n), pa.repeat(batch.metric, n),
            pa.array(batch.ts, type=pa.timestamp("us", tz="UTC")), pa.array(batch.value, type=pa.float64()),
            pa.array(batch.offset, type=pa.int16()), pa.repeat(source, n),
            pa.array(list(batch.devices), type=pa.string()).take(pa.array(batch.device)),
            pa.repeat(pa.scalar(day, pa.date32()), n),
        ], schema=INTRADAY_SCHEMA))
    return pa.concat_tables(parts) if parts else INTRADAY_SCHEMA.empty_table()


def _quarantine_rows(pday: ParticipantDay, source: str, screen: plausibility.BatchScreen) -> list[tuple[Any, ...]]:
    return quarantine.rows(pday.participant_id, pday.day, "fitbit", source, screen.values(),
                           datetime.now(timezone.utc))


def _quarantine_arrow(rows: list[tuple[Any, ...]]) -> pa.Table:
    columns: list[Sequence[Any]] = list(zip(*rows)) if rows else [[] for _ in QUARANTINE_SCHEMA]
    return pa.table({f.name: pa.array(col, type=f.type) for f, col in zip(QUARANTINE_SCHEMA, columns)},
                    schema=QUARANTINE_SCHEMA)


def _sleep_arrow(rows: list[Any], schema: pa.Schema = SLEEP_SCHEMA) -> pa.Table:
    columns: list[Sequence[Any]] = list(zip(*rows)) if rows else [[] for _ in schema]
    return pa.table({f.name: pa.array(col, type=f.type) for f, col in zip(schema, columns)}, schema=schema)


def load_lake(timescale: Timescale, lake: Lake, pday: ParticipantDay) -> DayOutcome:
    """Replace the participant-day's parquet (intraday, sleep stages, sleep sessions, quarantined
    values) in the lake, all tables in one write. The intraday rows are screened exactly as
    ``load_timescale`` screens them (the same parse when the other load kept it, ``screened``),
    so the lake and the database hold the same samples.
    ``timescale`` provides the participant-day's lock, held from reading the manifest to the end
    of the write (module docstring); nothing is written to the database."""
    with timescale.participant_day_lock(RAW_SOURCE, pday.participant_id, pday.day):
        return _load_lake(lake, pday)


def _load_lake(lake: Lake, pday: ParticipantDay) -> DayOutcome:
    manifest = _loadable_manifest(lake, pday)
    if isinstance(manifest, DayOutcome):
        return manifest
    day, batches, keep = _screened_batches(lake, pday, manifest, "lake")
    parsed, screen = day.parsed, day.screen
    intraday = intraday_arrow(batches, pday.participant_id, parsed.source, pday.day)
    outcome = _summary(pday, manifest, parsed, screen)
    scope = {"participant_id": pday.participant_id}
    lake.write_partition(pday.participant_id, pday.day, [
        PartitionTable(LAKE_INTRADAY, intraday, scope | {"local_date": pday.day}),
        PartitionTable(LAKE_SLEEP, _sleep_arrow(parsed.sleep), scope | {"sleep_date": pday.day}),
        PartitionTable(LAKE_SLEEP_SESSIONS, _sleep_arrow(parsed.sleep_sessions, SLEEP_SESSION_SCHEMA),
                       scope | {"sleep_date": pday.day}),
        PartitionTable(LAKE_QUARANTINE, _quarantine_arrow(_quarantine_rows(pday, parsed.source, screen)),
                       scope | {"local_date": pday.day}),
    ])
    keep()
    return outcome


def skip_reason(participant: Participant | None, day: date) -> str | None:
    """Why a participant-day is not fetched at all (None: fetch it)."""
    if participant is None:
        return "not in wearables.participants (run the roster sync)"
    if participant.fitbit_provider is None:
        return "no Fitbit provider in the roster"
    if not participant.enrolled_on(day):
        return f"not enrolled on {day}"
    return None

