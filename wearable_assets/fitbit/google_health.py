"""Google Health API v4 client: what to request for one participant-day, and how to survive it.

Plain Python (no Dagster) so it can be tested and reused by the CLI. For one participant-day it
requests each data type with a **civil-time** filter ``[D, D+1)`` (the provider computes every
point's civil time with the offset in force at that moment, so travel and DST are its problem,
not ours), follows ``nextPageToken`` until it is absent (pages are often shorter than
``pageSize``, and can even be empty while carrying a token), and hands every response body to a
``sink`` *before* decoding it, so even a malformed body is kept.

Auth errors map to re-consent reasons: a 401 refreshes once (under the token store's lock) and
retries; a second 401 is ``second_401``; 400 ``ACCOUNT_NOT_LINKED`` and 403 (e.g. "Cannot mint
UberMint" when a legacy Fitbit login consented) are flagged too. 429/5xx/timeouts are retried
by ``ApiSession``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from wearable_assets.fitbit.authorized import AuthorizedClient
from wearable_assets.fitbit.canonical import DayWindow
from wearable_assets.fitbit.http import ApiError, ApiSession, FetchResult, MalformedPayload, Sink, decode_json
from wearable_assets.oauth.app import OAuthApp
from wearable_assets.oauth.errors import redact
from wearable_assets.oauth.store import TokenStore

PROVIDER = "google_health"
DEFAULT_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
DEFAULT_BASE_URL = "https://health.googleapis.com/v4"
SCOPE_PREFIX = "https://www.googleapis.com/auth/googlehealth."
SCOPES = tuple(
    SCOPE_PREFIX + s
    for s in (
        "activity_and_fitness.readonly",
        "health_metrics_and_measurements.readonly",
        "sleep.readonly",
        "settings.readonly",
        "profile.readonly",
    )
)
MAX_PAGES = 500  # a runaway pagination loop is a provider bug; stop and say so


@dataclass(frozen=True)
class Request:
    """One data type to read for a participant-day."""

    data_type: str  # kebab-case path segment, e.g. "heart-rate"
    method: str  # "list" | "reconcile" | "rollUp" | "dailyRollUp"
    record: str  # "sample" | "interval" | "daily" | "sleep" (decides the filter member)
    page_size: int | None = None

    @property
    def name(self) -> str:
        return f"{self.data_type}.{self.method}"


#: What one participant-day reads. ``list`` keeps ``dataSource`` (provenance); sleep must use
#: ``reconcile`` (list on sleep does not take a data-source family). ``floors`` and
#: ``total-calories`` cannot be listed (the service answers "List is not supported for data type
#: ..., but the following actions are supported: rollup, dailyRollup"), so their minutes come from
#: a 60 s ``rollUp`` (one window per worn minute, no ``dataSource``). Those calories are total
#: energy, BMR included, as the legacy API's calories were (``active-energy-burned`` excludes BMR).
#: dailyRollUp gives the provider's own daily totals, kept as a cross-check of the minutes.
DAY_REQUESTS: tuple[Request, ...] = (
    Request("heart-rate", "list", "sample"),
    Request("steps", "list", "interval"),
    Request("distance", "list", "interval"),
    Request("floors", "rollUp", "interval"),
    Request("total-calories", "rollUp", "interval"),
    Request("active-zone-minutes", "list", "interval"),
    Request("oxygen-saturation", "list", "sample"),
    Request("heart-rate-variability", "list", "sample"),
    Request("respiratory-rate-sleep-summary", "list", "sample"),
    Request("daily-resting-heart-rate", "list", "daily"),
    Request("sleep", "reconcile", "sleep", page_size=25),
    Request("steps", "dailyRollUp", "daily"),
    Request("distance", "dailyRollUp", "daily"),
    Request("floors", "dailyRollUp", "daily"),
    Request("total-calories", "dailyRollUp", "daily"),
)


def civil_filter(request: Request, day: date) -> str:
    """AIP-160 filter selecting the civil day ``[day, day+1)`` for the request's record type."""
    snake = request.data_type.replace("-", "_")
    member = {
        "sample": "sample_time.civil_time",
        "interval": "interval.civil_start_time",
        "sleep": "interval.civil_end_time",  # sleep belongs to the day it ends (wake date)
        "daily": "date",
    }[request.record]
    start, end = day.isoformat(), (day + timedelta(days=1)).isoformat()
    return f'{snake}.{member} >= "{start}" AND {snake}.{member} < "{end}"'


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def civil_date(day: date) -> dict[str, Any]:
    # JSON numbers, not zero-padded strings: the API rejects "08" as an octal literal.
    return {"date": {"year": day.year, "month": day.month, "day": day.day}}


class GoogleHealthClient(AuthorizedClient):
    """Reads one participant's data with their stored Google token."""

    provider = PROVIDER

    def __init__(self, *, participant_id: str, oauth: OAuthApp, store: TokenStore, session: ApiSession,
                 base_url: str = DEFAULT_BASE_URL, page_size: int = 10000,
                 data_source_family: str | None = "users/me/dataSourceFamilies/google-wearables") -> None:
        super().__init__(participant_id=participant_id, oauth=oauth, store=store, session=session, base_url=base_url)
        self.page_size = page_size
        self.data_source_family = data_source_family

    def call(self, method: str, path: str, *, what: str, params: dict[str, Any] | None = None,
             json_body: dict[str, Any] | None = None) -> bytes:
        """One API call with the participant's token; returns the 2xx body (bytes)."""
        return self.send(method, path, what=what, params=params, json=json_body,
                         headers={"Accept": "application/json"})

    def failure(self, response: Any, what: str) -> Exception:
        status = response.status_code
        reason_code, message = _google_error(response)
        detail = redact(f"{what}: HTTP {status} {reason_code} {message}".strip(), self._access_token)
        if status == 401:
            return self.reconsent("second_401", detail)
        if reason_code == "ACCOUNT_NOT_LINKED":
            return self.reconsent("account_not_linked", detail)
        if status == 403:
            return self.reconsent("forbidden_403", detail)
        return ApiError(detail)

    # --- a participant-day ----------------------------------------------------------------
    def pages(self, request: Request, window: DayWindow, sink: Sink) -> Iterator[dict[str, Any]]:
        """Every page of one request, landed through ``sink`` before it is decoded."""
        path = f"users/me/dataTypes/{request.data_type}/dataPoints"
        day = window.day
        page_token: str | None = None
        for page in range(MAX_PAGES):
            what = f"{PROVIDER} {request.name} for {self.participant_id} {day} page {page}"
            name = f"{request.name}.p{page:03d}"
            if request.method == "dailyRollUp":
                body = {"range": {"start": civil_date(day), "end": civil_date(day + timedelta(days=1))},
                        "windowSizeDays": 1}
                if page_token:
                    body["pageToken"] = page_token
                raw = self.call("POST", f"{path}:dailyRollUp", what=what, json_body=body)
            elif request.method == "rollUp":
                body = {"range": {"startTime": rfc3339(window.start), "endTime": rfc3339(window.end)},
                        "windowSize": "60s", "pageSize": self.page_size}
                if page_token:
                    body["pageToken"] = page_token
                raw = self.call("POST", f"{path}:rollUp", what=what, json_body=body)
            else:
                params: dict[str, Any] = {"filter": civil_filter(request, day),
                                          "pageSize": request.page_size or self.page_size}
                if request.method == "list" and self.data_source_family:
                    params["dataSourceFamily"] = self.data_source_family
                if page_token:
                    params["pageToken"] = page_token
                suffix = ":reconcile" if request.method == "reconcile" else ""
                raw = self.call("GET", f"{path}{suffix}", what=what, params=params)
            kept_at = sink(name, raw)
            document = decode_json(raw, what, kept_at)
            if not isinstance(document, dict):
                raise MalformedPayload(f"{what}: expected a JSON object, got {type(document).__name__} (kept at {kept_at})")
            yield document
            page_token = document.get("nextPageToken") or None
            if not page_token:
                return
        raise ApiError(f"{PROVIDER} {request.name} for {self.participant_id} {day}: more than {MAX_PAGES} pages")

    def fetch_day(self, window: DayWindow, sink: Sink) -> FetchResult:
        """Land every payload of the participant-day; returns the manifest of landed names."""
        result = FetchResult()
        start_calls = self.session.calls

        def keep(name: str, body: bytes) -> str:
            result.payloads.append(name)
            return sink(name, body)

        for request in DAY_REQUESTS:
            for _ in self.pages(request, window, keep):
                pass
        raw = self.call("GET", "users/me/pairedDevices", what=f"{PROVIDER} pairedDevices for {self.participant_id}",
                        params={"pageSize": 100})
        kept_at = keep("pairedDevices", raw)
        decode_json(raw, f"{PROVIDER} pairedDevices for {self.participant_id}", kept_at)
        result.api_calls = self.session.calls - start_calls
        return result


def _google_error(response: Any) -> tuple[str, str]:
    """(reason or status, message) from a ``google.rpc.Status`` error body."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return str(error), ""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            return str(detail["reason"]), str(error.get("message", ""))
    return str(error.get("status", "")), str(error.get("message", ""))

