"""Google Health API v4 client: what to request for one participant-day, and how to survive it.

Plain Python (no Dagster) so it can be tested and reused by the CLI. A participant-day is the
roster zone's civil day ``D`` as one UTC interval (``DayWindow``), and every intraday type is
requested with a **physical-time** filter on exactly that interval (``sample_time.physical_time``
/ ``interval.start_time``; sleep on ``interval.end_time``). Consecutive participant-days tile
time without gaps or overlaps, so every point lands in exactly one of them wherever the device
was: a civil filter would select the *device's* local day, which differs from the roster's when
the wearer travels (and those points would belong to no participant-day's window). The
provider's daily totals come from a ``rollUp`` with one window spanning the same interval, so
they add up what the day stores; ``dailyRollUp`` would total the device's civil day instead.
Daily types (resting heart rate) only have a civil ``date``: the value dated ``D`` belongs to D.
Pages are followed until ``nextPageToken`` is absent (pages are often shorter than
``pageSize``, and can even be empty while carrying a token), and every response body goes to a
``sink`` *before* it is decoded, so even a malformed body is kept.

Auth errors map to re-consent reasons: a 401 refreshes once (under the token store's lock) and
retries; a second 401 is ``second_401``; 400 ``ACCOUNT_NOT_LINKED`` and 403 (e.g. "Cannot mint
UberMint" when a legacy Fitbit login consented) are flagged too. 429/5xx/timeouts are retried
by ``ApiSession``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from wearable_assets.fitbit.authorized import AuthorizedClient
from wearable_assets.fitbit.canonical import DayWindow
from wearable_assets.fitbit.google_health.settings import DEFAULT_BASE_URL, PROVIDER
from wearable_assets.fitbit.http import ApiError, ApiSession, FetchResult, MalformedPayload, Sink, decode_json
from wearable_assets.oauth.app import OAuthApp
from wearable_assets.oauth.errors import redact
from wearable_assets.oauth.store import TokenStore

MAX_PAGES = 500  # a runaway pagination loop is a provider bug; stop and say so


@dataclass(frozen=True)
class Request:
    """One data type to read for a participant-day."""

    data_type: str  # kebab-case path segment, e.g. "heart-rate"
    method: str  # "list" | "reconcile" | "rollUp"
    record: str  # "sample" | "interval" | "daily" | "sleep" (the filter member) | "minutes" | "total" (rollUp windows)
    page_size: int | None = None

    @property
    def name(self) -> str:
        """The landed payload's name (``<data-type>.<method>``): the parser routes on it. The
        day-total rollUp is ``rollUpDay`` so it never collides with the per-minute one."""
        return f"{self.data_type}.{self.method}{'Day' if self.record == 'total' else ''}"


#: What one participant-day reads. ``list`` keeps ``dataSource`` (provenance); sleep must use
#: ``reconcile`` (list on sleep does not take a data-source family). ``floors`` and
#: ``total-calories`` cannot be listed (the service answers "List is not supported for data type
#: ..., but the following actions are supported: rollup, dailyRollup"), so their minutes come from
#: a 60 s ``rollUp`` (one window per worn minute, no ``dataSource``). Those calories are total
#: energy, BMR included, as the legacy API's calories were (``active-energy-burned`` excludes BMR).
#: The ``total`` rollUps give the provider's own totals over the participant-day's interval, kept
#: as a cross-check of the minutes (same call count as the civil ``dailyRollUp`` they replace).
DAY_REQUESTS: tuple[Request, ...] = (
    Request("heart-rate", "list", "sample"),
    Request("steps", "list", "interval"),
    Request("distance", "list", "interval"),
    Request("floors", "rollUp", "minutes"),
    Request("total-calories", "rollUp", "minutes"),
    Request("active-zone-minutes", "list", "interval"),
    Request("oxygen-saturation", "list", "sample"),
    Request("heart-rate-variability", "list", "sample"),
    Request("respiratory-rate-sleep-summary", "list", "sample"),
    Request("daily-resting-heart-rate", "list", "daily"),
    Request("sleep", "reconcile", "sleep", page_size=25),
    Request("steps", "rollUp", "total"),
    Request("distance", "rollUp", "total"),
    Request("floors", "rollUp", "total"),
    Request("total-calories", "rollUp", "total"),
)


def day_filter(request: Request, window: DayWindow) -> str:
    """AIP-160 filter selecting the participant-day ``window`` for the request's record type.

    Samples, intervals and sleep are selected by **physical** time (RFC 3339 UTC literals), so
    the selection is the roster day's interval whatever zone the device was in. Daily types can
    only be filtered on their civil ``date``."""
    snake = request.data_type.replace("-", "_")
    if request.record == "daily":
        start, end = window.day.isoformat(), (window.day + timedelta(days=1)).isoformat()
        return f'{snake}.date >= "{start}" AND {snake}.date < "{end}"'
    member = {
        "sample": "sample_time.physical_time",
        "interval": "interval.start_time",
        "sleep": "interval.end_time",  # sleep belongs to the day it ends (wake)
    }[request.record]
    start, end = rfc3339(window.start), rfc3339(window.end)
    return f'{snake}.{member} >= "{start}" AND {snake}.{member} < "{end}"'


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
            if request.method == "rollUp":
                # Per-minute windows, or one window spanning the whole day (23, 24 or 25 h).
                size = 60 if request.record == "minutes" else int((window.end - window.start).total_seconds())
                body = {"range": {"startTime": rfc3339(window.start), "endTime": rfc3339(window.end)},
                        "windowSize": f"{size}s", "pageSize": self.page_size}
                if page_token:
                    body["pageToken"] = page_token
                raw = self.call("POST", f"{path}:rollUp", what=what, json_body=body)
            else:
                params: dict[str, Any] = {"filter": day_filter(request, window),
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

