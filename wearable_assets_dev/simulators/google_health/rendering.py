"""JSON of the v4 wire format: timestamps, durations, civil date-times, intervals, data sources.

Few points are rendered as dicts; heart-rate and per-minute pages hold thousands, so those are
rendered from a per-type template filled in from numpy columns (``point_format``, ``fill``).
"""

from __future__ import annotations

import functools
import time
from datetime import date
from typing import Any

import numpy as np
import orjson

from wearable_assets_dev.simulators.cohort import SimUser


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def duration(seconds: int) -> str:
    return f"{int(seconds)}s"


def date_json(d: date) -> dict[str, int]:
    return {"year": d.year, "month": d.month, "day": d.day}


EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def clock_json(seconds_of_day: int) -> dict[str, int]:
    """``CivilDateTime.time`` (zero fields omitted, as proto3 JSON does)."""
    h, m, s = seconds_of_day // 3600, seconds_of_day // 60 % 60, seconds_of_day % 60
    return {k: v for k, v in (("hours", h), ("minutes", m), ("seconds", s)) if v}


def civil_json(local_epoch: int) -> dict[str, Any]:
    """``CivilDateTime`` for a local wall time given as naive epoch seconds (zeros omitted)."""
    days, seconds = divmod(local_epoch, 86400)
    return {"date": date_json(date.fromordinal(EPOCH_ORDINAL + days)), "time": clock_json(seconds)}


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
    dates = np.array([orjson.dumps(date_json(date.fromordinal(EPOCH_ORDINAL + d))).decode()
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
