"""The Google Health API v4 vocabulary the simulator serves: OAuth scopes, paging limits, the
data types (how each is filtered, which scope reads it, how it rolls up) and ``google.rpc.Status``
error replies. Every other module of the simulator speaks in these terms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse

from wearable_assets_dev.simulators.common import OrjsonResponse

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

#: Types served from the day their sleep ends on, up to a day after the point itself.
NIGHT_TYPES = frozenset({"sleep", "oxygen-saturation", "heart-rate-variability", "respiratory-rate-sleep-summary"})


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
