"""Loopback simulator of the Google Health API v4 and the Google OAuth 2.0 endpoints it needs.

One server answers three roots, so a client configured with ``auth_url``, ``token_url`` and
``base_url`` talks to it exactly as to the real hosts:

* ``{url}/o/oauth2/v2/auth``: the consent page. It approves at once and redirects to
  ``redirect_uri`` with ``code`` and ``state``; the simulated account is chosen by ``login_hint``.
* ``{url}/token`` (+ ``/revoke``): authorization_code (refresh token only with
  ``access_type=offline``) and refresh_token grants; dead grants answer 400 ``invalid_grant``.
* ``{url}/v4``: ``users/me/dataTypes/{type}/dataPoints`` list, ``:reconcile``, ``:rollUp``,
  ``:dailyRollUp``, plus identity, profile, settings and paired devices.

Served behaviour follows the v4 discovery document: newest-first points, int64 values as
strings, physical + civil time with UTC offsets, ``dataSource`` provenance, AIP-160 filters on
physical or civil time, ``nextPageToken`` pages that are often SHORTER than ``pageSize`` (and,
when asked, empty pages that still carry a token), ``google.rpc.Status`` error bodies, a
per-user budget of 300 requests/minute answered with 429 + ``Retry-After``. Empty repeated
fields are omitted as in proto3 JSON, so a day without data is ``{}``. Sleep that has synced
less than ``SLEEP_PROCESSING`` ago is served ``processed: false`` without stages; naps the cohort
was given (``SyntheticCohort.add_nap``) are served ``stagesStatus: REJECTED_NAP`` without stages.

Offsets, civil times, civil filters, ``dailyRollUp`` days and daily values' ``date`` follow the
DEVICE's zone at each instant (``cohort.device_offsets``), which ``SimUser.travel`` can move
away from the user's home zone: physical filters and ``rollUp`` are what stay put.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

from wearable_assets.gc_paused import gc_paused
from wearable_assets_dev.simulators.cohort import (
    UTC,
    OffsetTable,
    SimDay,
    SimUser,
    SleepSession,
    SyntheticCohort,
    concatenate,
    device_offsets,
    from_epoch,
    to_epoch,
)
from wearable_assets_dev.simulators.common import (
    AuthCode,
    LoopbackSimulator,
    OAuthSimulatorState,
    OrjsonResponse,
    SimulatorServer,
    add_clock_routes,
    basic_credentials,
    form_fields,
    make_app,
    redirect_back,
)

SCOPE_PREFIX = "https://www.googleapis.com/auth/googlehealth."
ACTIVITY = SCOPE_PREFIX + "activity_and_fitness.readonly"
METRICS = SCOPE_PREFIX + "health_metrics_and_measurements.readonly"
SLEEP = SCOPE_PREFIX + "sleep.readonly"
SETTINGS = SCOPE_PREFIX + "settings.readonly"
PROFILE = SCOPE_PREFIX + "profile.readonly"
READ_SCOPES = (ACTIVITY, METRICS, SLEEP, SETTINGS, PROFILE)

ACCESS_TOKEN_LIFETIME_S = 3599
MAX_PAGE_SIZE = 10_000
DEFAULT_PAGE_SIZE = 1440
SESSION_PAGE_SIZE = 25
#: The real service returns about 5,000 heart-rate points per page whatever pageSize asks.
SERVER_PAGE_CAP = {"heart-rate": 5000}
#: Without a lower time bound a list reaches back this far (the real API has no documented limit).
UNBOUNDED_HISTORY_DAYS = 30
#: A sleep is served ``processed: false`` (no stages) until the device has synced this long past
#: the wake time.
SLEEP_PROCESSING = timedelta(minutes=30)
#: Point sets kept for the next pages of the same query (see ``GoogleHealthSimulator._matching``).
POINT_CACHE_SIZE = 8


@dataclass(frozen=True)
class DataType:
    """A served data type: how it is filtered, which scope reads it, how it rolls up."""

    path: str  # kebab-case, as in URLs
    record: str  # sample | interval | session | daily
    scope: str
    listable: bool = True
    rollup: bool = False
    max_rollup_days: int = 90

    @property
    def snake(self) -> str:
        return self.path.replace("-", "_")

    @property
    def camel(self) -> str:
        head, *rest = self.path.split("-")
        return head + "".join(p.capitalize() for p in rest)

    def filter_fields(self) -> dict[str, str]:
        """Filterable member -> literal kind (``physical`` | ``civil`` | ``date``)."""
        return {
            "sample": {"sample_time.physical_time": "physical", "sample_time.civil_time": "civil"},
            "interval": {"interval.start_time": "physical", "interval.civil_start_time": "civil"},
            "session": {"interval.end_time": "physical", "interval.civil_end_time": "civil"},
            "daily": {"date": "date"},
        }[self.record]


DATA_TYPES: dict[str, DataType] = {
    t.path: t
    for t in (
        DataType("heart-rate", "sample", METRICS, rollup=True, max_rollup_days=14),
        DataType("steps", "interval", ACTIVITY, rollup=True),
        DataType("distance", "interval", ACTIVITY, rollup=True),
        DataType("floors", "interval", ACTIVITY, listable=False, rollup=True),
        DataType("active-energy-burned", "interval", ACTIVITY, rollup=True),
        DataType("total-calories", "interval", ACTIVITY, listable=False, rollup=True, max_rollup_days=14),
        DataType("active-zone-minutes", "interval", ACTIVITY, rollup=True),
        DataType("sleep", "session", SLEEP),
        DataType("oxygen-saturation", "sample", METRICS),
        DataType("daily-oxygen-saturation", "daily", METRICS),
        DataType("heart-rate-variability", "sample", METRICS),
        DataType("daily-heart-rate-variability", "daily", METRICS, rollup=True),
        DataType("respiratory-rate-sleep-summary", "sample", METRICS),
        DataType("daily-respiratory-rate", "daily", METRICS),
        DataType("daily-resting-heart-rate", "daily", METRICS, rollup=True),
    )
}
DATA_SOURCE_FAMILIES = ("all-sources", "google-wearables", "google-sources", "self-sources")
HR_ZONE_NAMES = {1: "FAT_BURN", 2: "CARDIO", 3: "PEAK"}
#: Union key of a rollup value where it differs from the data type's own camelCase name.
ROLLUP_KEYS = {
    "daily-resting-heart-rate": "restingHeartRatePersonalRange",
    "daily-heart-rate-variability": "heartRateVariabilityPersonalRange",
}
STAGE_TYPES = {"wake": "AWAKE", "light": "LIGHT", "deep": "DEEP", "rem": "REM"}


class ApiError(Exception):
    """A ``google.rpc.Status`` error reply."""

    def __init__(
        self,
        code: int,
        status: str,
        message: str,
        reason: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message
        self.details = list(details or [])
        if reason:
            self.details.insert(
                0,
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                 "domain": "health.googleapis.com"},
            )
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            body["details"] = self.details
        return OrjsonResponse({"error": body}, status_code=self.code, headers=self.headers)


def invalid(message: str, reason: str | None = None) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message, reason)


# --- JSON rendering helpers ---------------------------------------------------------------


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def duration(seconds: int) -> str:
    return f"{int(seconds)}s"


def date_json(d: date) -> dict[str, int]:
    return {"year": d.year, "month": d.month, "day": d.day}


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def clock_json(seconds_of_day: int) -> dict[str, int]:
    """``CivilDateTime.time`` (zero fields omitted, as proto3 JSON does)."""
    h, m, s = seconds_of_day // 3600, seconds_of_day // 60 % 60, seconds_of_day % 60
    return {k: v for k, v in (("hours", h), ("minutes", m), ("seconds", s)) if v}


def civil_json(local_epoch: int) -> dict[str, Any]:
    """``CivilDateTime`` for a local wall time given as naive epoch seconds (zeros omitted)."""
    days, seconds = divmod(local_epoch, 86400)
    return {"date": date_json(date.fromordinal(_EPOCH_ORDINAL + days)), "time": clock_json(seconds)}


# --- JSON of many points ------------------------------------------------------------------
#
# Heart-rate and per-minute pages hold thousands of points. Instead of a tree of dicts per point,
# a type's point is rendered once as a template with slots, and each point is then one ``%``
# formatting of that template with its values, taken from columns computed with numpy.

#: A template slot inside a JSON string: the value is written between the quotes.
TEXT = "\x01"
#: A template slot for a whole JSON value: a number, or JSON text rendered beforehand.
VALUE = "\x02"


def point_format(template: dict[str, Any]) -> str:
    """One point's JSON with ``TEXT``/``VALUE`` slots as a ``%`` format string; its ``%s`` come
    in the order the slots appear in the JSON, i.e. in the template's key order."""
    text = orjson.dumps(template).decode().replace("%", "%%")
    return text.replace('"\\u0002"', "%s").replace("\\u0001", "%s")


def fill(fmt: str, *columns: list[Any]) -> bytes:
    """The JSON array of the points ``fmt`` makes with one value of each column per point."""
    return ("[" + ",".join([fmt % values for values in zip(*columns)]) + "]").encode()


def rfc3339_text(t: np.ndarray) -> list[str]:
    """``rfc3339`` of a whole array, without the final ``Z`` (the templates hold it)."""
    return np.datetime_as_string(t.astype("datetime64[s]"), unit="s").tolist()


@functools.cache
def _clock_texts() -> np.ndarray:
    """``clock_json`` as JSON text for every second of a day (built once: 86,400 short strings)."""
    texts = []
    for minute in range(1440):
        h, m = divmod(minute, 60)
        head = ([f'"hours":{h}'] if h else []) + ([f'"minutes":{m}'] if m else [])
        texts.append("{" + ",".join(head) + "}")
        texts.extend("{" + ",".join([*head, f'"seconds":{s}']) + "}" for s in range(1, 60))
    return np.array(texts, dtype=object)


def civil_texts(local: np.ndarray) -> tuple[list[str], list[str]]:
    """The ``date`` and ``time`` of ``civil_json`` as JSON text, for an array of naive-local
    epoch seconds."""
    days, seconds = np.divmod(local, 86400)
    if not days.size:
        return [], []
    first = int(days.min())
    dates = np.array([orjson.dumps(date_json(date.fromordinal(_EPOCH_ORDINAL + d))).decode()
                      for d in range(first, int(days.max()) + 1)], dtype=object)
    return dates[days - first].tolist(), _clock_texts()[seconds].tolist()


def sample_time(t: int, off: int) -> dict[str, Any]:
    return {"physicalTime": rfc3339(t), "utcOffset": duration(off), "civilTime": civil_json(t + off)}


def interval_json(start: int, end: int, off_start: int, off_end: int) -> dict[str, Any]:
    return {
        "startTime": rfc3339(start),
        "startUtcOffset": duration(off_start),
        "endTime": rfc3339(end),
        "endUtcOffset": duration(off_end),
        "civilStartTime": civil_json(start + off_start),
        "civilEndTime": civil_json(end + off_end),
    }


def data_source(user: SimUser, method: str = "PASSIVELY_MEASURED") -> dict[str, Any]:
    return {
        "platform": "FITBIT",
        "recordingMethod": method,
        "device": {"displayName": user.device, "formFactor": "FITNESS_BAND", "manufacturer": "Fitbit"},
        "application": {"packageName": "com.fitbit.FitbitMobile"},
    }


# --- filters --------------------------------------------------------------------------------

_CLAUSE = re.compile(r'^\s*([A-Za-z0-9_.\-]+)\s*(>=|<)\s*"([^"]*)"\s*$')
_CIVIL_LITERAL = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$")


@dataclass
class Bound:
    kind: str  # physical | civil | date
    op: str  # >= | <
    value: int  # epoch seconds (physical), naive-local epoch seconds (civil), date ordinal (date)


def _parse_literal(kind: str, text: str) -> int:
    if kind == "physical":
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise invalid(f'"{text}" is not an RFC 3339 timestamp', "INVALID_FILTER_FORMAT") from None
        if dt.tzinfo is None:
            raise invalid(
                f'"{text}" has no UTC offset; physical-time members take RFC 3339 timestamps such as '
                '"2026-11-20T05:00:00Z"',
                "INVALID_FILTER_FORMAT",
            )
        return to_epoch(dt)
    if kind == "civil":
        if not _CIVIL_LITERAL.match(text):
            raise invalid(
                f'"{text}" is not a civil date-time (YYYY-MM-DD[THH:mm:ss], no offset)',
                "INVALID_DATA_POINT_FILTER_CIVIL_DATE_TIME_FORMAT",
            )
        return to_epoch(datetime.fromisoformat(text).replace(tzinfo=UTC))
    try:
        return date.fromisoformat(text).toordinal()
    except ValueError:
        raise invalid(f'"{text}" is not a date (YYYY-MM-DD)', "INVALID_FILTER_FORMAT") from None


def parse_filter(text: str, dtype: DataType) -> list[list[Bound]]:
    """AIP-160 subset the API accepts: clauses ``member >= "x"`` / ``member < "x"`` joined by
    ``AND`` (sleep also ``OR``). Returns a disjunction of conjunctions."""
    text = (text or "").strip()
    if not text:
        return [[]]
    groups = re.split(r"\s+OR\s+", text)
    if len(groups) > 1 and dtype.record != "session":
        raise invalid("OR is only supported in sleep filters", "INVALID_DATA_POINT_FILTER_SYNTAX")
    fields = dtype.filter_fields()
    prefixes = {dtype.snake, dtype.camel} if dtype.record == "daily" else {dtype.snake}
    out: list[list[Bound]] = []
    for group in groups:
        bounds = []
        for clause in re.split(r"\s+AND\s+", group):
            m = _CLAUSE.match(clause)
            if not m:
                raise invalid(f"cannot parse filter clause {clause.strip()!r}", "INVALID_DATA_POINT_FILTER_SYNTAX")
            member, op, literal = m.groups()
            prefix, _, rest = member.partition(".")
            if "-" in prefix:
                raise invalid(
                    f"data type {prefix!r} in a filter must be snake_case (e.g. {dtype.snake!r})",
                    "INVALID_DATA_POINT_FILTER",
                )
            if prefix not in prefixes or rest not in fields:
                allowed = ", ".join(f"{dtype.snake}.{f}" for f in fields)
                raise invalid(
                    f"{member!r} cannot be filtered on for data type {dtype.path!r}; use {allowed}",
                    "INVALID_DATA_POINT_FILTER_DATA_TYPE_MEMBER",
                )
            bounds.append(Bound(fields[rest], op, _parse_literal(fields[rest], literal)))
        out.append(bounds)
    return out


def _mask(bounds: list[Bound], physical: np.ndarray, civil: np.ndarray, dates: np.ndarray) -> np.ndarray:
    mask = np.ones(physical.size, dtype=bool)
    for b in bounds:
        col = {"physical": physical, "civil": civil, "date": dates}[b.kind]
        mask &= (col >= b.value) if b.op == ">=" else (col < b.value)
    return mask


#: Types served from the day their sleep ends on, up to a day after the point itself.
NIGHT_TYPES = frozenset({"sleep", "oxygen-saturation", "heart-rate-variability", "respiratory-rate-sleep-summary"})


def utc_window(groups: list[list[Bound]], now: datetime, night: bool = False) -> tuple[int, int]:
    """A UTC span holding every point the filter can match and overlapping the days that record
    them (``night``: see ``NIGHT_TYPES``). An open side reaches back ``UNBOUNDED_HISTORY_DAYS``
    and one day more, or forward two days past ``now``."""
    lows, highs = [], []
    for bounds in groups:
        lo = hi = None
        for b in bounds:
            if b.kind == "physical":
                v, margin = b.value, 0
            else:  # civil time, or a date (its civil midnight); UTC offsets run from -12 h to +14 h
                v = b.value if b.kind == "civil" else (b.value - _EPOCH_ORDINAL) * 86400
                margin = 14 * 3600
            if b.op == ">=":
                lo = v - margin if lo is None else max(lo, v - margin)
            else:
                hi = v + margin if hi is None else min(hi, v + margin)
        lows.append(lo if lo is not None else to_epoch(now) - (UNBOUNDED_HISTORY_DAYS + 1) * 86400)
        highs.append((hi + 86400 if night else hi) if hi is not None else to_epoch(now) + 2 * 86400)
    return min(lows), max(highs)


# --- point sets ---------------------------------------------------------------------------


@dataclass
class PointSet:
    """Columnar points of one type: keys for filtering and ordering plus a renderer."""

    order: np.ndarray  # unique sort key (interval/sample start), epoch seconds
    physical: np.ndarray  # the member physical filters compare (sample time, start, or sleep end)
    civil: np.ndarray  # the same instant as naive local time
    dates: np.ndarray  # date ordinal (daily types)
    render: Callable[[np.ndarray, bool], bytes]  # (indices, reconciled) -> the JSON array of those points


def one_by_one(render: Callable[[int, bool], dict[str, Any]]) -> Callable[[np.ndarray, bool], bytes]:
    """Adapt a per-point renderer (few points: sleep, night samples, daily values) to
    ``PointSet.render``."""
    return lambda indices, reconciled: orjson.dumps([render(int(i), reconciled) for i in indices])


def _empty_points() -> PointSet:
    z = np.zeros(0, dtype=np.int64)
    return PointSet(z, z, z, z, lambda indices, r: b"[]")


#: ``motionContext`` of a heart-rate sample, by "in a minute of moderate or vigorous activity".
MOTION = np.array(["SEDENTARY", "ACTIVE"], dtype=object)
#: ``heartRateZone`` by ``hr_zone`` (an active-zone minute is never in zone 0).
ZONE_NAMES = np.array([None] + [HR_ZONE_NAMES[z] for z in (1, 2, 3)], dtype=object)


def build_points(dtype: DataType, user: SimUser, days: list[SimDay], lo: int, hi: int) -> PointSet:
    """Every point of ``dtype`` that the synced ``days`` hold within ``[lo, hi)`` (UTC)."""
    if not days:
        return _empty_points()
    offsets = device_offsets(user, to_epoch(days[0].start) - 86400, to_epoch(days[-1].end) + 86400)
    source = data_source(user)
    derived = data_source(user, "DERIVED")
    key = dtype.camel

    def wrap(payload: dict[str, Any], reconciled: bool, src: dict[str, Any] = source, name: str | None = None):
        if reconciled:
            out: dict[str, Any] = {"dataPointName": name} if name else {}
            out[key] = payload
            return out
        out = {"name": name} if name else {}
        out["dataSource"] = src
        out[key] = payload
        return out

    if dtype.record == "daily":
        rows = [d for d in days if d.resting_hr is not None]
        order = np.array([to_epoch(d.start) for d in rows], dtype=np.int64)
        # The value's civil ``date`` is "in the user's timezone": the device's, at the middle of
        # the recorded day (the home date unless travel moved the device's clock a day away).
        middle = (order + np.array([to_epoch(d.end) for d in rows], dtype=np.int64)) // 2
        ords = (middle + offsets.at(middle)) // 86400 + _EPOCH_ORDINAL if rows else order

        def render_daily(i: int, reconciled: bool) -> dict[str, Any]:
            d = rows[i]
            payload: dict[str, Any] = {"date": date_json(date.fromordinal(int(ords[i])))}
            if dtype.path == "daily-resting-heart-rate":
                payload["beatsPerMinute"] = str(d.resting_hr)
                payload["dailyRestingHeartRateMetadata"] = {"calculationMethod": "WITH_SLEEP"}
            elif dtype.path == "daily-oxygen-saturation":
                values = np.array([s.percent for s in d.spo2]) if d.spo2 else np.array([0.0])
                payload.update(
                    averagePercentage=round(float(values.mean()), 1),
                    lowerBoundPercentage=round(float(np.percentile(values, 5)), 1),
                    upperBoundPercentage=round(float(np.percentile(values, 95)), 1),
                    standardDeviationPercentage=round(float(values.std()), 2),
                )
            elif dtype.path == "daily-heart-rate-variability":
                rmssd = np.array([w.rmssd for w in d.hrv]) if d.hrv else np.array([0.0])
                payload.update(
                    averageHeartRateVariabilityMilliseconds=round(float(rmssd.mean()), 3),
                    deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds=round(float(rmssd.max()), 3),
                    nonRemHeartRateBeatsPerMinute=str(int(d.resting_hr or 60) - 2),
                    entropy=round(2.5 + float(rmssd.std()) / 20, 3),
                )
            elif dtype.path == "daily-respiratory-rate":
                payload["breathsPerMinute"] = d.breathing.full if d.breathing else 0.0
            return wrap(payload, reconciled, derived)

        return PointSet(order, order, order, ords, one_by_one(render_daily))

    if dtype.record == "session" or dtype.path in ("oxygen-saturation", "heart-rate-variability",
                                                   "respiratory-rate-sleep-summary"):
        return _night_points(dtype, user, days, offsets, wrap)

    conc = concatenate(days, lo, hi)
    if dtype.path == "heart-rate":
        t = conc.hr_times
        off = offsets.at(t)
        minute = np.clip(np.searchsorted(conc.minute_starts, t, side="right") - 1, 0, None)
        active = conc.intensity[minute] >= 2 if t.size else np.zeros(0, dtype=bool)
        bpm = conc.hr_bpm
        hr_format = {
            r: point_format(wrap({
                "beatsPerMinute": TEXT,
                "sampleTime": {"physicalTime": TEXT + "Z", "utcOffset": TEXT + "s",
                               "civilTime": {"date": VALUE, "time": VALUE}},
                "metadata": {"motionContext": TEXT, "sensorLocation": "WRIST"},
            }, r))
            for r in (False, True)
        }

        def render_hr(sel: np.ndarray, reconciled: bool) -> bytes:
            ts, o = t[sel], off[sel]
            dates, clocks = civil_texts(ts + o)
            return fill(hr_format[reconciled], bpm[sel].tolist(), rfc3339_text(ts), o.tolist(), dates, clocks,
                        MOTION[active[sel].astype(np.intp)].tolist())

        return PointSet(t, t, t + off, np.zeros(t.size, dtype=np.int64), render_hr)

    # Per-minute interval types: only minutes the device was worn (true zeros included).
    keep = conc.worn.copy()
    if dtype.path == "active-zone-minutes":
        keep &= conc.azm > 0
    bmr = user.bmr_kcal_per_min
    active_kcal = np.clip(conc.calories - bmr, 0, None)
    if dtype.path == "active-energy-burned":
        keep &= active_kcal > 0
    idx = np.flatnonzero(keep)
    start = conc.minute_starts[idx]
    off_s, off_e = offsets.at(start), offsets.at(start + 60)

    # The value fields of a minute (template slots) and their values for minutes ``j`` of ``conc``.
    values: dict[str, tuple[dict[str, str], Callable[[np.ndarray], list[list[Any]]]]] = {
        "steps": ({"count": TEXT}, lambda j: [conc.steps[j].tolist()]),
        "distance": ({"millimeters": TEXT},
                     lambda j: [np.round(conc.distance_m[j] * 1000).astype(np.int64).tolist()]),
        "active-energy-burned": ({"kcal": VALUE}, lambda j: [[round(v, 4) for v in active_kcal[j].tolist()]]),
        "active-zone-minutes": ({"activeZoneMinutes": TEXT, "heartRateZone": TEXT},
                                lambda j: [conc.azm[j].tolist(), ZONE_NAMES[conc.hr_zone[j]].tolist()]),
    }
    if dtype.path not in values:
        raise invalid(f"list is not supported for data type {dtype.path}")
    fields, columns = values[dtype.path]
    minute_format = {
        r: point_format(wrap({
            **fields,
            "interval": {"startTime": TEXT + "Z", "startUtcOffset": TEXT + "s",
                         "endTime": TEXT + "Z", "endUtcOffset": TEXT + "s",
                         "civilStartTime": {"date": VALUE, "time": VALUE},
                         "civilEndTime": {"date": VALUE, "time": VALUE}},
        }, r))
        for r in (False, True)
    }

    def render_minute(sel: np.ndarray, reconciled: bool) -> bytes:
        a, oa, ob = start[sel], off_s[sel], off_e[sel]
        start_dates, start_clocks = civil_texts(a + oa)
        end_dates, end_clocks = civil_texts(a + 60 + ob)
        return fill(minute_format[reconciled], *columns(idx[sel]), rfc3339_text(a), oa.tolist(),
                    rfc3339_text(a + 60), ob.tolist(), start_dates, start_clocks, end_dates, end_clocks)

    return PointSet(start, start, start + off_s, np.zeros(start.size, dtype=np.int64), render_minute)


def _night_points(dtype: DataType, user: SimUser, days: list[SimDay], offsets: OffsetTable, wrap) -> PointSet:
    """Sleep sessions and the per-night samples (SpO2, HRV, respiratory summary)."""
    if dtype.path in ("oxygen-saturation", "heart-rate-variability"):
        return _night_samples(dtype, days, offsets, wrap)
    entries: list[tuple[int, int, Callable[[bool], dict[str, Any]]]] = []  # (order, physical, render)
    for d in days:
        if dtype.path == "sleep":
            for nap in d.naps:
                entries.append((to_epoch(nap.start), to_epoch(nap.end), _nap_renderer(user, nap, offsets, wrap)))
        s = d.sleep
        if s is None:
            continue
        s0, s1 = to_epoch(s.start), to_epoch(s.end)
        if dtype.path == "sleep":
            processed = d.synced_until is None or d.synced_until >= s.end + SLEEP_PROCESSING
            entries.append((s0, s1, _sleep_renderer(user, d, offsets, processed, wrap)))
        elif dtype.path == "respiratory-rate-sleep-summary" and d.breathing is not None:
            b = d.breathing

            def render_br(r: bool, t: int = s1, b=b) -> dict[str, Any]:
                payload: dict[str, Any] = {"sampleTime": sample_time(t, int(offsets.at(t)))}
                for name, v in (("full", b.full), ("deep", b.deep), ("light", b.light), ("rem", b.rem)):
                    if v is not None:
                        payload[f"{name}SleepStats"] = {"breathsPerMinute": v, "standardDeviation": 0.6,
                                                         "signalToNoise": 4.2}
                return wrap(payload, r, data_source(user, "DERIVED"))

            entries.append((s1, s1, render_br))
    entries.sort(key=lambda e: e[0])
    order = np.array([e[0] for e in entries], dtype=np.int64)
    physical = np.array([e[1] for e in entries], dtype=np.int64)
    civil = physical + offsets.at(physical) if physical.size else physical
    renders = [e[2] for e in entries]
    return PointSet(order, physical, civil, np.zeros(order.size, dtype=np.int64),
                    one_by_one(lambda i, r: renders[i](r)))


def _night_samples(dtype: DataType, days: list[SimDay], offsets: OffsetTable, wrap) -> PointSet:
    """SpO2 samples or HRV windows of the synced nights, in time order."""
    spo2 = dtype.path == "oxygen-saturation"
    samples: list[Any] = [x for d in days if d.sleep is not None for x in (d.spo2 if spo2 else d.hrv)]
    t = np.array([to_epoch(x.at if spo2 else x.start) for x in samples], dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t = t[order]
    samples = [samples[i] for i in order.tolist()]
    off = offsets.at(t)

    def render(i: int, reconciled: bool) -> dict[str, Any]:
        x, when = samples[i], sample_time(int(t[i]), int(off[i]))
        if spo2:
            return wrap({"percentage": x.percent, "sampleTime": when}, reconciled)
        return wrap({
            "rootMeanSquareOfSuccessiveDifferencesMilliseconds": x.rmssd,
            "standardDeviationMilliseconds": x.sdnn,
            "sampleTime": when,
            "metadata": {"highFrequencyPower": x.hf, "lowFrequencyPower": x.lf},
        }, reconciled)

    return PointSet(t, t, t + off, np.zeros(t.size, dtype=np.int64), one_by_one(render))


def _nap_renderer(user: SimUser, nap: SleepSession, offsets: OffsetTable, wrap):
    """A nap too short to stage: processed, ``stagesStatus: REJECTED_NAP`` (sleep under 3 h)
    and no ``stages``; ``type`` CLASSIC, the type Fitbit gives sleep it does not stage."""
    n0, n1 = to_epoch(nap.start), to_epoch(nap.end)
    minutes = nap.time_in_bed

    def render(reconciled: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "interval": interval_json(n0, n1, int(offsets.at(n0)), int(offsets.at(n1))),
            "type": "CLASSIC",
            "metadata": {"mainSleep": False, "nap": True, "processed": True, "manuallyEdited": False,
                         "stagesStatus": "REJECTED_NAP"},
            "summary": {"minutesInSleepPeriod": str(minutes), "minutesAsleep": str(max(minutes - 6, 0)),
                        "minutesAwake": str(min(minutes, 6)), "minutesToFallAsleep": "0",
                        "minutesAfterWakeUp": "0"},
            "createTime": rfc3339(n1 + 300),
            "updateTime": rfc3339(n1 + 1800),
        }
        name = f"users/{user.health_user_id}/dataTypes/sleep/dataPoints/{nap.log_id}"
        return wrap(payload, reconciled, data_source(user, "DERIVED"), name)

    return render


def _sleep_renderer(user: SimUser, d: SimDay, offsets: OffsetTable, processed: bool, wrap):
    s = d.sleep
    assert s is not None
    s0, s1 = to_epoch(s.start), to_epoch(s.end)

    def seg(stage) -> dict[str, Any]:
        a, b = to_epoch(stage.start), to_epoch(stage.end)
        return {"type": STAGE_TYPES[stage.level], "startTime": rfc3339(a), "startUtcOffset": duration(int(offsets.at(a))),
                "endTime": rfc3339(b), "endUtcOffset": duration(int(offsets.at(b)))}

    def render(reconciled: bool) -> dict[str, Any]:
        secs, counts = s.level_seconds(), s.level_counts()
        payload: dict[str, Any] = {
            "interval": interval_json(s0, s1, int(offsets.at(s0)), int(offsets.at(s1))),
            "type": "STAGES",
            "metadata": {"mainSleep": s.is_main, "nap": False, "processed": processed,
                         "manuallyEdited": False},
            "createTime": rfc3339(s1 + 300),
            "updateTime": rfc3339(s1 + (1800 if processed else 300)),
        }
        if processed:
            payload["stages"] = [seg(st) for st in s.stages]
            if s.short_wakes:
                payload["shortAwakenings"] = [seg(st) for st in s.short_wakes]
            payload["metadata"]["stagesStatus"] = "SUCCEEDED"
            payload["summary"] = {
                "minutesInSleepPeriod": str(s.time_in_bed),
                "minutesAsleep": str(s.minutes_asleep),
                "minutesAwake": str(s.minutes_awake),
                "minutesToFallAsleep": "0",
                "minutesAfterWakeUp": "0",
                "stagesSummary": [
                    {"type": STAGE_TYPES[lv], "minutes": str(secs[lv] // 60), "count": str(counts[lv])}
                    for lv in ("wake", "light", "deep", "rem")
                ],
            }
        name = f"users/{user.health_user_id}/dataTypes/sleep/dataPoints/{s.log_id}"
        return wrap(payload, reconciled, data_source(user, "DERIVED"), name)

    return render


# --- rollups ------------------------------------------------------------------------------


def rollup_value(dtype: DataType, conc, m_idx: np.ndarray, h_idx: np.ndarray, days: list[SimDay], bmr: float):
    """The ``*RollupValue`` of ``dtype`` over the given minute / heart-rate sample indices."""
    if dtype.path == "heart-rate":
        if h_idx.size == 0:
            return None
        v = conc.hr_bpm[h_idx].astype(float)
        return {"beatsPerMinuteAvg": round(float(v.mean()), 2), "beatsPerMinuteMin": float(v.min()),
                "beatsPerMinuteMax": float(v.max())}
    if dtype.path == "daily-resting-heart-rate":
        values: list[float] = [d.resting_hr for d in days if d.resting_hr is not None]
        return {"beatsPerMinuteMin": float(min(values)), "beatsPerMinuteMax": float(max(values))} if values else None
    if dtype.path == "daily-heart-rate-variability":
        values = [float(np.mean([w.rmssd for w in d.hrv])) for d in days if d.hrv]
        return ({"averageHeartRateVariabilityMillisecondsMin": round(min(values), 3),
                 "averageHeartRateVariabilityMillisecondsMax": round(max(values), 3)} if values else None)
    worn = m_idx[conc.worn[m_idx]]
    if worn.size == 0:
        return None
    return minute_rollup_value(dtype, [column[worn].sum() for column in minute_columns(dtype, conc, bmr)])


def minute_columns(dtype: DataType, conc, bmr: float) -> list[np.ndarray]:
    """The per-minute columns whose sums over a window's worn minutes make ``dtype``'s rollup value."""
    if dtype.path == "steps":
        return [conc.steps]
    if dtype.path == "distance":
        return [conc.distance_m]
    if dtype.path == "floors":
        return [conc.floors]
    if dtype.path == "total-calories":
        return [conc.calories]
    if dtype.path == "active-energy-burned":
        return [np.clip(conc.calories - bmr, 0, None)]
    if dtype.path == "active-zone-minutes":
        return [np.where(conc.hr_zone == zone, conc.azm, 0) for zone in (1, 2, 3)]
    raise invalid(f"rollups are not supported for data type {dtype.path}")


def minute_rollup_value(dtype: DataType, sums: list[Any]) -> dict[str, Any]:
    """``dtype``'s rollup value from the window sums of its ``minute_columns``."""
    if dtype.path in ("steps", "floors"):
        return {"countSum": str(int(sums[0]))}
    if dtype.path == "distance":
        return {"millimetersSum": str(int(round(float(sums[0]) * 1000)))}
    if dtype.path in ("total-calories", "active-energy-burned"):
        return {"kcalSum": round(float(sums[0]), 3)}
    fat, cardio, peak = (str(int(v)) for v in sums)  # active-zone-minutes
    return {"sumInFatBurnHeartZone": fat, "sumInCardioHeartZone": cardio, "sumInPeakHeartZone": peak}


# --- state ----------------------------------------------------------------------------------


@dataclass
class _Token:
    user_id: str
    scopes: tuple[str, ...]
    expires: float
    refresh_token: str | None = None


class GoogleHealthState(OAuthSimulatorState):
    """Faults, call log, token calls, partial consent and rate budgets (``OAuthSimulatorState``)
    plus Google's tokens and the per-user account switches."""

    def __init__(self, rate_limit_per_minute: int = 300) -> None:
        super().__init__(rate_limit_per_minute, 60)
        self.access_tokens: dict[str, _Token] = {}
        self.refresh_tokens: dict[str, _Token] = {}
        self.account_not_linked: set[str] = set()
        self.permission_denied: set[str] = set()
        #: Serve pages shorter than pageSize (as the real service does); off = exactly pageSize.
        self.short_pages = True
        #: Every N-th page comes back empty but with a nextPageToken (0 = never).
        self.empty_page_every = 0
        self._oauth_lock = threading.Lock()

    # OAuth bookkeeping -------------------------------------------------------------------
    def issue_tokens(self, user_id: str, scopes: Iterable[str] = READ_SCOPES, offline: bool = True) -> dict[str, Any]:
        """Mint a token response as the token endpoint would (for tests that skip the browser leg)."""
        scopes = tuple(scopes)
        with self._oauth_lock:
            access = "ya29.sim-" + secrets.token_urlsafe(48)
            refresh = "1//sim-" + secrets.token_urlsafe(40) if offline else None
            self.access_tokens[access] = _Token(user_id, scopes, time.time() + ACCESS_TOKEN_LIFETIME_S, refresh)
            if refresh:
                self.refresh_tokens[refresh] = _Token(user_id, scopes, float("inf"))
        out: dict[str, Any] = {"access_token": access, "expires_in": ACCESS_TOKEN_LIFETIME_S,
                               "scope": " ".join(scopes), "token_type": "Bearer"}
        if refresh:
            out["refresh_token"] = refresh
        return out

    def restore_grant(self, user_id: str, token: dict[str, Any]) -> None:
        """Honour a token this service issued before the simulator (re)started.

        The real service keeps a user's grant until it is revoked; an in-memory simulator forgets
        it on restart. ``simulators exec`` hands back the tokens the project stored, so a
        participant enrolled by an earlier run keeps working without a fresh consent.
        """
        scopes = tuple(str(token.get("scope") or " ".join(READ_SCOPES)).split())
        refresh = token.get("refresh_token")
        with self._oauth_lock:
            if refresh:
                self.refresh_tokens[refresh] = _Token(user_id, scopes, float("inf"))
            if token.get("access_token"):
                expires = float(token.get("expires_at") or 0.0)
                self.access_tokens[token["access_token"]] = _Token(user_id, scopes, expires, refresh)

    def revoke_refresh_tokens(self, user_id: str) -> int:
        """The user withdrew consent: their refresh tokens now get ``invalid_grant``."""
        with self._oauth_lock:
            dead = [t for t, v in self.refresh_tokens.items() if v.user_id == user_id]
            for t in dead:
                del self.refresh_tokens[t]
            for t in [t for t, v in self.access_tokens.items() if v.user_id == user_id]:
                del self.access_tokens[t]
        return len(dead)

    def expire_access_tokens(self, user_id: str | None = None) -> None:
        """Make current access tokens (of one user or everyone) expired, so calls get 401."""
        with self._oauth_lock:
            for tok in self.access_tokens.values():
                if user_id is None or tok.user_id == user_id:
                    tok.expires = 0.0

    def set_account_not_linked(self, user_id: str, not_linked: bool = True) -> None:
        """Data calls for the user answer 400 FAILED_PRECONDITION / ACCOUNT_NOT_LINKED."""
        (self.account_not_linked.add if not_linked else self.account_not_linked.discard)(user_id)

    def set_permission_denied(self, user_id: str, denied: bool = True) -> None:
        """Data calls for the user answer 403 PERMISSION_DENIED (needs re-consent)."""
        (self.permission_denied.add if denied else self.permission_denied.discard)(user_id)



# --- the simulator --------------------------------------------------------------------------


class GoogleHealthSimulator(LoopbackSimulator):
    """Google OAuth + Google Health API v4 over loopback HTTP, serving ``cohort``."""

    def __init__(
        self,
        cohort: SyntheticCohort,
        client_id: str = "sim-google-client",
        client_secret: str = "sim-google-secret",
        rate_limit_per_minute: int = 300,
        port: int = 0,
    ) -> None:
        self.cohort = cohort
        self.client_id = client_id
        self.client_secret = client_secret
        self.state = GoogleHealthState(rate_limit_per_minute)
        self._point_cache: OrderedDict[tuple[Any, ...], tuple[PointSet, np.ndarray]] = OrderedDict()
        self._point_lock = threading.Lock()
        self.app = make_app("Google Health API v4 simulator", self.state)
        self._server = SimulatorServer(self.app, port=port)
        self._routes()

    # endpoints ----------------------------------------------------------------------------
    @property
    def auth_url(self) -> str:
        return self.url + "/o/oauth2/v2/auth"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def revoke_url(self) -> str:
        return self.url + "/revoke"

    @property
    def base_url(self) -> str:
        return self.url + "/v4"

    # helpers ------------------------------------------------------------------------------
    def _authorize(self, request: Request, user_segment: str, scope: str | None) -> SimUser:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise ApiError(
                401, "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential.",
                "CREDENTIALS_MISSING",
            )
        token = self.state.access_tokens.get(header[7:].strip())
        if token is None or token.expires <= time.time():
            raise ApiError(
                401, "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
                "ACCESS_TOKEN_EXPIRED" if token is not None else "ACCESS_TOKEN_INVALID",
            )
        user = self.cohort.user(token.user_id)
        allowed, _remaining, reset, _limit = self.state.rate_limits.hit(user.user_id)
        if not allowed:
            raise ApiError(
                429, "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user' "
                "of service 'health.googleapis.com'.",
                "RATE_LIMIT_EXCEEDED",
                details=[{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                          "violations": [{"subject": f"user:{user.health_user_id}",
                                          "description": "Read requests per minute per user"}]}],
                headers={"Retry-After": str(reset)},
            )
        if user_segment not in ("me", user.health_user_id):
            raise ApiError(403, "PERMISSION_DENIED", "The caller does not have permission", "RESOURCE_PERMISSION_DENIED")
        if user.user_id in self.state.account_not_linked:
            raise ApiError(400, "FAILED_PRECONDITION", "The account is not linked to Google Health", "ACCOUNT_NOT_LINKED")
        if user.user_id in self.state.permission_denied:
            raise ApiError(403, "PERMISSION_DENIED", "The caller does not have permission", "RESOURCE_PERMISSION_DENIED")
        if scope is not None and scope not in token.scopes:
            raise ApiError(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.",
                           "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
        return user

    @staticmethod
    def _dtype(path: str) -> DataType:
        dtype = DATA_TYPES.get(path)
        if dtype is None:
            raise invalid(
                f"data type {path!r} is not supported by this simulator; known: {', '.join(sorted(DATA_TYPES))}",
                "INVALID_PARENT_DATA_TYPE_COLLECTION",
            )
        return dtype

    def _synced_days(self, user: SimUser, lo: int, hi: int, at: datetime | None = None) -> list[SimDay]:
        """The user's days overlapping ``[lo, hi)`` as the cloud holds them after a sync at ``at``
        (default: their last sync)."""
        at = self.cohort.last_sync(user.user_id) if at is None else at
        dates = self.cohort.local_dates(user.user_id, from_epoch(lo), from_epoch(hi))
        return [self.cohort.day(user.user_id, d).until(at) for d in dates]

    def _sync_state(self, user: SimUser, lo: int, hi: int, at: datetime) -> datetime | None:
        """What the points of ``[lo, hi)`` depend on in a sync at ``at``: ``None`` once every day
        overlapping it has synced completely (sleep processed too), else ``at`` itself."""
        for d in self.cohort.local_dates(user.user_id, from_epoch(lo), from_epoch(hi)):
            day = self.cohort.day(user.user_id, d)
            if at < day.end or (day.sleep is not None and at < day.sleep.end + SLEEP_PROCESSING):
                return at
        return None

    def _matching(self, user: SimUser, dtype: DataType, filter_text: str,
                  groups: list[list[Bound]]) -> tuple[PointSet, np.ndarray]:
        """The points a query can see and the indices of those its filter matches, newest first.

        Kept for the query's next pages (a client asks for them one after the other), under a key
        holding everything the answer depends on: user, data type, filter, the UTC window (which
        follows ``cohort.now`` when the filter has an open side) and the user's sync state, so a
        late sync between two pages is seen as it was without the cache."""
        lo, hi = utc_window(groups, self.cohort.now, dtype.path in NIGHT_TYPES)
        at = self.cohort.last_sync(user.user_id)
        key = (user.user_id, dtype.path, filter_text, lo, hi, self._sync_state(user, lo, hi, at))
        with self._point_lock:
            hit = self._point_cache.get(key)
            if hit is not None:
                self._point_cache.move_to_end(key)
                return hit
        points = build_points(dtype, user, self._synced_days(user, lo, hi, at), lo, hi)
        mask = np.zeros(points.order.size, dtype=bool)
        for bounds in groups:
            mask |= _mask(bounds, points.physical, points.civil, points.dates)
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-points.order[idx], kind="stable")]
        with self._point_lock:
            self._point_cache[key] = (points, idx)
            while len(self._point_cache) > POINT_CACHE_SIZE:
                self._point_cache.popitem(last=False)
        return points, idx

    # routes -------------------------------------------------------------------------------
    def _routes(self) -> None:
        app = self.app

        @app.exception_handler(ApiError)
        async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
            return exc.response()

        add_clock_routes(app, self.cohort)
        app.post("/_sim/users/{user_id}")(self._admin_user)
        app.get("/o/oauth2/v2/auth")(self._consent)
        app.post("/token")(self._token)
        app.post("/revoke")(self._revoke)
        app.get("/v4/users/{user}/dataTypes/{dtype}/dataPoints")(self._list)
        app.get("/v4/users/{user}/dataTypes/{dtype}/dataPoints:reconcile")(self._list)
        app.post("/v4/users/{user}/dataTypes/{dtype}/dataPoints:dailyRollUp")(self._daily_rollup)
        app.post("/v4/users/{user}/dataTypes/{dtype}/dataPoints:rollUp")(self._rollup)
        app.get("/v4/users/{user}/identity")(self._identity)
        app.get("/v4/users/{user}/profile")(self._profile)
        app.get("/v4/users/{user}/settings")(self._settings)
        app.get("/v4/users/{user}/pairedDevices")(self._devices)

    async def _admin_user(self, user_id: str, body: dict[str, Any]) -> dict[str, str]:
        """``POST /_sim/users/{id}`` with any of ``revoke``, ``expire_access_tokens`` (true),
        ``account_not_linked``, ``permission_denied`` (bool), ``rate_limit_per_minute`` (int or
        null), ``granted_scopes`` (list or null): the same switches as ``state``, over HTTP."""
        self.cohort.user(user_id)
        state = self.state
        if body.get("revoke"):
            state.revoke_refresh_tokens(user_id)
        if body.get("expire_access_tokens"):
            state.expire_access_tokens(user_id)
        if "account_not_linked" in body:
            state.set_account_not_linked(user_id, bool(body["account_not_linked"]))
        if "permission_denied" in body:
            state.set_permission_denied(user_id, bool(body["permission_denied"]))
        if "rate_limit_per_minute" in body:
            state.set_rate_limit(user_id, body["rate_limit_per_minute"])
        if "granted_scopes" in body:
            state.set_granted_scopes(user_id, body["granted_scopes"])
        return {"status": "ok"}

    # OAuth --------------------------------------------------------------------------------
    async def _consent(self, request: Request) -> Any:
        q = request.query_params
        if q.get("client_id") != self.client_id:
            return PlainTextResponse("Error 401: invalid_client. The OAuth client was not found.", status_code=401)
        redirect_uri = q.get("redirect_uri")
        if not redirect_uri:
            return PlainTextResponse("Error 400: invalid_request. Missing required parameter: redirect_uri",
                                     status_code=400)

        def back(**params: str) -> RedirectResponse:
            return redirect_back(redirect_uri, q.get("state"), **params)

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        requested = tuple(s for s in (q.get("scope") or "").split() if s)
        if not requested:
            return PlainTextResponse("Error 400: invalid_request. Missing required parameter: scope", status_code=400)
        hint, granted = self.state.consent(q.get("login_hint"), requested, list(self.cohort.users))
        if hint is None:
            return back(error="access_denied",
                        error_description=f"no simulated account for login_hint={q.get('login_hint')!r}")
        method = q.get("code_challenge_method") or "plain"
        if q.get("code_challenge") and method not in ("S256", "plain"):
            return back(error="invalid_request", error_description="Invalid code_challenge_method")
        code = self.state.new_code(AuthCode(hint, redirect_uri, granted, q.get("code_challenge"), method,
                                            offline=q.get("access_type") == "offline"))
        return back(code=code, scope=" ".join(granted))

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        """Google accepts the client secret in the form body or as HTTP Basic."""
        client_id, secret = basic_credentials(request) or (form.get("client_id"), form.get("client_secret"))
        return client_id == self.client_id and secret == self.client_secret

    async def _token(self, request: Request) -> JSONResponse:
        form = await form_fields(request)
        grant = form.get("grant_type", "")
        self.state.token_calls[grant or "(none)"] += 1
        if not self._client_ok(request, form):
            return OrjsonResponse({"error": "invalid_client", "error_description": "Unauthorized"}, status_code=401)
        if grant == "authorization_code":
            code, problem = self.state.redeem_code(form)
            if code is None:
                error, description = {"code": ("invalid_grant", "Bad Request"),
                                      "redirect_uri": ("redirect_uri_mismatch", "Bad Request"),
                                      "code_verifier": ("invalid_grant", "Invalid code verifier.")}[problem]
                return OrjsonResponse({"error": error, "error_description": description}, status_code=400)
            return OrjsonResponse(self.state.issue_tokens(code.user_id, code.scopes, offline=code.offline))
        if grant == "refresh_token":
            refresh = self.state.refresh_tokens.get(form.get("refresh_token", ""))
            if refresh is None:
                return OrjsonResponse(
                    {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                    status_code=400,
                )
            minted = self.state.issue_tokens(refresh.user_id, refresh.scopes, offline=False)
            return OrjsonResponse(minted)  # Google keeps the refresh token: none in the reply
        return OrjsonResponse({"error": "unsupported_grant_type", "error_description": f"Invalid grant_type: {grant}"},
                              status_code=400)

    async def _revoke(self, request: Request) -> JSONResponse:
        form = await form_fields(request)
        token = form.get("token") or request.query_params.get("token", "")
        owner = self.state.refresh_tokens.get(token) or self.state.access_tokens.get(token)
        if owner is None:
            return OrjsonResponse({"error": "invalid_token", "error_description": "Token expired or revoked"},
                                  status_code=400)
        self.state.revoke_refresh_tokens(owner.user_id)
        return OrjsonResponse({})

    # data ---------------------------------------------------------------------------------
    def _page(self, request: Request, user: SimUser, dtype: DataType, reconciled: bool) -> dict[str, Any]:
        q = request.query_params
        family = q.get("dataSourceFamily")
        if family is not None:
            if dtype.path == "sleep" and not reconciled:
                raise invalid("Filtering by data source family is not supported for sleep; use "
                              "ReconcileDataPoints instead.", "INVALID_DATA_POINT_DATA_SOURCE_FAMILY")
            if family.rsplit("/", 1)[-1] not in DATA_SOURCE_FAMILIES or not family.startswith("users/me/dataSourceFamilies/"):
                raise invalid(f"unknown data source family {family!r}", "INVALID_DATA_POINT_DATA_SOURCE_FAMILY")
        filter_text = q.get("filter", "")
        groups = parse_filter(filter_text, dtype)
        session = dtype.record == "session"
        try:
            requested = int(q.get("pageSize") or (SESSION_PAGE_SIZE if session else DEFAULT_PAGE_SIZE))
        except ValueError:
            raise invalid(f"pageSize {q.get('pageSize')!r} is not an integer") from None
        if requested < 0:
            raise invalid("pageSize must not be negative")
        size = min(requested or DEFAULT_PAGE_SIZE, SESSION_PAGE_SIZE if session else MAX_PAGE_SIZE)

        fingerprint = hashlib.sha1(f"{dtype.path}|{filter_text}|{family}|{reconciled}".encode()).hexdigest()[:12]
        cursor, page_no = None, 0
        if q.get("pageToken"):
            try:
                tok = json.loads(base64.urlsafe_b64decode(q["pageToken"] + "=="))
                cursor, page_no, fp = int(tok["k"]), int(tok["p"]), tok["f"]
            except (ValueError, KeyError, TypeError):
                raise invalid("the page token is not valid") from None
            if fp != fingerprint:
                raise invalid("the page token does not belong to this request; keep every other parameter "
                              "as in the first call")

        if family is not None and family.endswith("/self-sources"):
            return {}
        points, idx = self._matching(user, dtype, filter_text, groups)
        if cursor is not None:
            idx = idx[points.order[idx] < cursor]

        if self.state.short_pages:
            size = min(size, SERVER_PAGE_CAP.get(dtype.path, size))
            if page_no % 3 == 1:
                size = max(1, size * 2 // 3)
        empty_now = self.state.empty_page_every and page_no % self.state.empty_page_every == self.state.empty_page_every - 1
        chosen = idx[:0] if empty_now and idx.size else idx[:size]
        more = idx.size > chosen.size
        body: dict[str, Any] = {}
        if chosen.size:
            body["dataPoints"] = orjson.Fragment(points.render(chosen, reconciled))
        if more:
            last = int(points.order[chosen[-1]]) if chosen.size else (cursor if cursor is not None else 2**62)
            token = json.dumps({"k": last, "p": page_no + 1, "f": fingerprint}, separators=(",", ":"))
            body["nextPageToken"] = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
        return body

    async def _list(self, request: Request, user: str, dtype: str) -> JSONResponse:
        """``dataPoints`` (list) and ``dataPoints:reconcile``: same query, different envelope."""
        reconciled = request.url.path.endswith(":reconcile")
        data_type = self._dtype(dtype)
        sim_user = self._authorize(request, user, data_type.scope)
        if not data_type.listable:
            raise invalid(
                f"{'Reconcile' if reconciled else 'List'} is not supported for data type {data_type.path}, "
                "but the following actions are supported: rollup, dailyRollup",
                "INVALID_PARENT_DATA_TYPE_COLLECTION",
            )
        with gc_paused():
            return OrjsonResponse(self._page(request, sim_user, data_type, reconciled=reconciled))

    async def _json_body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise invalid(f"Invalid JSON payload received. {exc}") from None
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received: expected an object")
        return body

    @staticmethod
    def _offset_token(body: dict[str, Any], total: int, default: int = DEFAULT_PAGE_SIZE) -> tuple[int, int]:
        size = min(int(body.get("pageSize") or default), MAX_PAGE_SIZE)
        start = 0
        if body.get("pageToken"):
            try:
                start = int(base64.urlsafe_b64decode(str(body["pageToken"]) + "==").decode())
            except ValueError:
                raise invalid("the page token is not valid") from None
        return start, min(total, start + size)

    async def _daily_rollup(self, request: Request, user: str, dtype: str) -> JSONResponse:
        data_type = self._dtype(dtype)
        sim_user = self._authorize(request, user, data_type.scope)
        if not data_type.rollup:
            raise invalid(f"dailyRollUp is not supported for data type {data_type.path}")
        body = await self._json_body(request)
        rng = body.get("range") or {}

        def civil_date(name: str) -> date:
            node = rng.get(name)
            if not isinstance(node, dict) or not isinstance(node.get("date"), dict):
                raise invalid(f"range.{name} must be a CivilDateTime such as "
                              '{"date": {"year": 2026, "month": 11, "day": 20}}')
            d = node["date"]
            try:
                return date(int(d["year"]), int(d["month"]), int(d["day"]))
            except (KeyError, ValueError, TypeError):
                raise invalid(f"range.{name}.date is not a valid calendar date") from None

        first, last = civil_date("start"), civil_date("end")
        window = int(body.get("windowSizeDays") or 1)
        if window < 1:
            raise invalid("windowSizeDays must be at least 1")
        if last <= first:
            raise invalid("range.end must be after range.start (the range is closed-open)")
        if (last - first).days > data_type.max_rollup_days:
            raise invalid(f"the maximum range for {data_type.path} is {data_type.max_rollup_days} days")
        # Civil days of the DEVICE's zone (travel included): a minute belongs to the civil date of
        # its start in the zone the device was in then. Offsets run from -12 h to +14 h, so the
        # civil range lies within these UTC bounds.
        lo = (first.toordinal() - _EPOCH_ORDINAL) * 86400 - 14 * 3600
        hi = (last.toordinal() - _EPOCH_ORDINAL) * 86400 + 12 * 3600
        days = self._synced_days(sim_user, lo, hi)
        conc = concatenate(days, lo, hi)
        offsets = device_offsets(sim_user, lo - 86400, hi + 86400)
        m_civil = (conc.minute_starts + offsets.at(conc.minute_starts)) // 86400 + _EPOCH_ORDINAL
        h_civil = (conc.hr_times + offsets.at(conc.hr_times)) // 86400 + _EPOCH_ORDINAL
        out = []
        for w0 in range(0, (last - first).days, window):
            a = first.toordinal() + w0
            b = min(a + window, last.toordinal())
            m_idx = np.flatnonzero((m_civil >= a) & (m_civil < b))
            h_idx = np.flatnonzero((h_civil >= a) & (h_civil < b))
            chunk = [d for d in days if a <= d.date.toordinal() < b]
            value = rollup_value(data_type, conc, m_idx, h_idx, chunk, sim_user.bmr_kcal_per_min)
            if value is None:
                continue
            out.append({"civilStartTime": {"date": date_json(date.fromordinal(a))},
                        "civilEndTime": {"date": date_json(date.fromordinal(b))},
                        ROLLUP_KEYS.get(data_type.path, data_type.camel): value})
        start, stop = self._offset_token(body, len(out))
        reply: dict[str, Any] = {"rollupDataPoints": out[start:stop]} if out[start:stop] else {}
        if stop < len(out):
            reply["nextPageToken"] = base64.urlsafe_b64encode(str(stop).encode()).decode().rstrip("=")
        return OrjsonResponse(reply)

    async def _rollup(self, request: Request, user: str, dtype: str) -> JSONResponse:
        data_type = self._dtype(dtype)
        sim_user = self._authorize(request, user, data_type.scope)
        if not data_type.rollup or data_type.record == "daily":
            raise invalid(f"rollUp is not supported for data type {data_type.path}")
        body = await self._json_body(request)
        rng = body.get("range") or {}
        try:
            lo = _parse_literal("physical", str(rng["startTime"]))
            hi = _parse_literal("physical", str(rng["endTime"]))
        except KeyError:
            raise invalid("range.startTime and range.endTime are required") from None
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(body.get("windowSize", "")))
        if not match or float(match.group(1)) < 1:
            raise invalid('windowSize is required and must be at least "1s"')
        step = int(float(match.group(1)))
        if hi <= lo:
            raise invalid("range.endTime must be after range.startTime")
        if hi - lo > data_type.max_rollup_days * 86400:
            raise invalid(f"the maximum range for {data_type.path} is {data_type.max_rollup_days} days")
        with gc_paused():
            return OrjsonResponse(self._rollup_page(data_type, sim_user, lo, hi, step, body))

    def _rollup_page(self, data_type: DataType, user: SimUser, lo: int, hi: int, step: int,
                     body: dict[str, Any]) -> dict[str, Any]:
        """One page of ``step``-second windows over ``[lo, hi)`` (only windows with data)."""
        days = self._synced_days(user, lo, hi)
        conc = concatenate(days, lo, hi)
        m_bucket = (conc.minute_starts - lo) // step
        h_bucket = (conc.hr_times - lo) // step
        buckets = np.unique(h_bucket if data_type.path == "heart-rate" else m_bucket[conc.worn])
        start, stop = self._offset_token(body, buckets.size)
        page = buckets[start:stop]
        values = self._window_values(data_type, conc, page, m_bucket, h_bucket, step, user.bmr_kcal_per_min)
        starts, key = lo + page * step, data_type.camel
        out = [{"startTime": a + "Z", "endTime": b + "Z", key: value}
               for a, b, value in zip(rfc3339_text(starts), rfc3339_text(np.minimum(hi, starts + step)), values)
               if value is not None]
        reply: dict[str, Any] = {"rollupDataPoints": out} if out else {}
        if stop < buckets.size:
            reply["nextPageToken"] = base64.urlsafe_b64encode(str(stop).encode()).decode().rstrip("=")
        return reply

    @staticmethod
    def _window_values(dtype: DataType, conc, windows: np.ndarray, m_bucket: np.ndarray, h_bucket: np.ndarray,
                       step: int, bmr: float) -> list[dict[str, Any] | None]:
        """``rollup_value`` of each of ``windows`` (bucket numbers of minutes / samples)."""
        # Minutes and samples are in time order, so each window is one slice of them.
        if dtype.path == "heart-rate":
            h_from, h_to = np.searchsorted(h_bucket, windows, "left"), np.searchsorted(h_bucket, windows, "right")
            return [rollup_value(dtype, conc, windows[:0], np.arange(a, b), [], bmr)
                    for a, b in zip(h_from.tolist(), h_to.tolist())]
        columns = minute_columns(dtype, conc, bmr)
        m_from, m_to = np.searchsorted(m_bucket, windows, "left"), np.searchsorted(m_bucket, windows, "right")
        if step <= 60:  # one minute per window (windows come from worn minutes): its values are the sums
            return [minute_rollup_value(dtype, list(sums))
                    for sums in zip(*(column[m_from].tolist() for column in columns))]
        out: list[dict[str, Any] | None] = []
        for a, b in zip(m_from.tolist(), m_to.tolist()):
            worn = np.arange(a, b)[conc.worn[a:b]]
            out.append(minute_rollup_value(dtype, [column[worn].sum() for column in columns]) if worn.size else None)
        return out

    # profile-ish --------------------------------------------------------------------------
    async def _identity(self, request: Request, user: str) -> JSONResponse:
        u = self._authorize(request, user, None)
        return OrjsonResponse({"name": "users/me/identity", "healthUserId": u.health_user_id,
                               "legacyUserId": u.legacy_user_id})

    async def _profile(self, request: Request, user: str) -> JSONResponse:
        u = self._authorize(request, user, PROFILE)
        return OrjsonResponse({"name": f"users/{u.health_user_id}/profile", "age": u.age,
                               "membershipStartDate": {"year": 2024, "month": 1, "day": 15}})

    async def _settings(self, request: Request, user: str) -> JSONResponse:
        u = self._authorize(request, user, SETTINGS)
        zone = u.zone_at(self.cohort.now)  # the device's zone now: settings keep no history
        offset = self.cohort.now.astimezone(zone).utcoffset()
        return OrjsonResponse({
            "name": f"users/{u.health_user_id}/settings", "timeZone": zone.key,
            "utcOffset": duration(int(offset.total_seconds()) if offset else 0),
            "distanceUnit": "DISTANCE_UNIT_KILOMETERS", "weightUnit": "WEIGHT_UNIT_KILOGRAMS",
            "languageLocale": "en_US",
        })

    async def _devices(self, request: Request, user: str) -> JSONResponse:
        u = self._authorize(request, user, SETTINGS)
        synced = self.cohort.last_sync(u.user_id)
        return OrjsonResponse({"pairedDevices": [{
            "name": f"users/{u.health_user_id}/pairedDevices/{(u.seed or 0) % 10**9}",
            "deviceVersion": u.device, "deviceType": "TRACKER",
            "batteryLevel": 30 + (u.seed or 0) % 70, "batteryStatus": "High",
            "lastSyncTime": synced.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }]})
