"""Legacy Fitbit Web API client (``api.fitbit.com``): archived data only.

The legacy API and its OAuth endpoints were turned off on 2026-11-02 and answer **410 Gone**.
A 410 is therefore not retried: it flips the participant to ``needs_reconsent`` (reason
``gone_410``) with an instruction to re-consent them through Google Health. The client stays for
deployments that still reach a working endpoint (archives, the simulator's "working" mode).

Quirks handled here: refresh tokens are **single-use** (the token store's row lock makes sure
only one worker spends one), the token endpoint wants HTTP Basic client authentication, every
response carries ``Fitbit-Rate-Limit-*`` headers (150 calls/hour/user; ``ApiSession`` stops
before spending the last one), and errors are classified on ``errorType``, not only on the status.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from wearable_assets.fitbit.authorized import AuthorizedClient
from wearable_assets.fitbit.canonical import DayWindow
from wearable_assets.fitbit.http import ApiError, FetchResult, MalformedPayload, Sink, decode_json
from wearable_assets.fitbit.legacy.settings import ACTIVITY_RESOURCES, PROVIDER
from wearable_assets.oauth.errors import redact


def day_paths(day: date) -> list[tuple[str, str]]:
    """(payload name, path) of every call for one participant-day, in landing order.

    HR and activity are requested for the user's local day ``D`` (times come back local and
    offset-less). SpO2 and HRV belong to the night ending on a date but start the evening
    before, so they are requested for ``[D, D+1]`` and the loader keeps the samples inside D.
    """
    d, d1 = day.isoformat(), (day + timedelta(days=1)).isoformat()
    paths = [("heart", f"1/user/-/activities/heart/date/{d}/1d/1sec.json")]
    paths += [(res, f"1/user/-/activities/{res}/date/{d}/1d/1min.json") for res in ACTIVITY_RESOURCES]
    paths += [
        ("sleep", f"1.2/user/-/sleep/date/{d}.json"),
        ("spo2", f"1/user/-/spo2/date/{d}/{d1}/all.json"),
        ("hrv", f"1/user/-/hrv/date/{d}/{d1}/all.json"),
        ("br", f"1/user/-/br/date/{d}/all.json"),
        ("profile", "1/user/-/profile.json"),
        ("devices", "1/user/-/devices.json"),
    ]
    return paths


def _fitbit_error(response: Any) -> tuple[str, str]:
    try:
        errors = response.json().get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        return str(first.get("errorType", "")), str(first.get("message", ""))
    except (ValueError, AttributeError, IndexError):
        return "", ""


class FitbitLegacyClient(AuthorizedClient):
    provider = PROVIDER

    def call(self, path: str, *, what: str) -> bytes:
        return self.send("GET", path, what=what)

    def refreshable(self, response: Any) -> bool:
        # Classify on errorType, not only on the status: a 401 can also mean privacy settings.
        return _fitbit_error(response)[0] in ("expired_token", "invalid_token", "")

    def failure(self, response: Any, what: str) -> Exception:
        status = response.status_code
        error_type, message = _fitbit_error(response)
        detail = redact(f"{what}: HTTP {status} {error_type} {message}".strip(), self._access_token)
        if status == 410:
            return self.reconsent(
                "gone_410", "The legacy Fitbit Web API is turned off; its data can no longer be fetched with this grant")
        if status == 401:
            return self.reconsent("second_401", detail)
        if status == 403:
            return self.reconsent("forbidden_403", detail)
        return ApiError(detail)

    def fetch_day(self, window: DayWindow, sink: Sink) -> FetchResult:
        day = window.day
        result = FetchResult()
        start_calls = self.session.calls
        for name, path in day_paths(day):
            what = f"{PROVIDER} {name} for {self.participant_id} {day}"
            raw = self.call(path, what=what)
            result.payloads.append(name)
            kept_at = sink(name, raw)
            document = decode_json(raw, what, kept_at)
            if not isinstance(document, (dict, list)):
                raise MalformedPayload(f"{what}: expected JSON object or array (kept at {kept_at})")
        result.api_calls = self.session.calls - start_calls
        return result
