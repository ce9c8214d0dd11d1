"""HTTP plumbing shared by both Fitbit adapters: rate limits, retries, call counting.

Policy (from the providers' documentation, see docs/fitbit.md):

* a per-participant client-side limit (Google: 300 requests/min/user) and, for Google, a share of
  the project's quota (120,000/min, see ``GoogleHealthResource``), so we never *cause* 429s (both are
  process-wide ``wearable_assets.rate_limits`` limiters);
* 429: wait what the server asks (``Retry-After``, Google's ``RetryInfo.retryDelay``, or
  ``Fitbit-Rate-Limit-Reset``), then retry; never treated as an auth problem. If the wait is
  longer than ``max_wait_s`` the call fails with ``RateLimited`` instead of blocking a worker
  for an hour (the legacy API's window is hourly);
* 5xx, timeouts and dropped connections: exponential backoff with jitter, bounded;
* anything else (2xx, 4xx) is returned to the adapter, which knows what a 401 or 410 means.

Every attempt counts as an API call (that is what the provider's quota counts).
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

# Re-exported: the adapters import the errors and the decoder from here.
from wearable_assets.fitbit.decoding import ApiError, MalformedPayload, decode_json  # noqa: F401
from wearable_assets.rate_limits import SlidingWindowLimiter, WaitTooLong, slots

log = logging.getLogger(__name__)


#: ``sink(name, body) -> where it was kept``: the raw-landing callback every adapter calls for
#: each response body *before* decoding it, so even a malformed body is kept.
Sink = Callable[[str, bytes], str]


@dataclass
class FetchResult:
    """What fetching one participant-day produced: the landed payload names, in order."""

    payloads: list[str] = field(default_factory=list)
    api_calls: int = 0


class RateLimited(ApiError):
    """The provider's rate-limit window (or our own budget) resets later than we are willing to wait."""


def retry_after_seconds(response: requests.Response) -> float | None:
    """How long the server asked us to wait, from whichever hint it gave."""
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(header)
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    try:
        details = response.json().get("error", {}).get("details", [])
    except (ValueError, AttributeError):
        details = []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = str(detail.get("retryDelay", "")).rstrip("s")
            try:
                return max(0.0, float(delay))
            except ValueError:
                pass
    reset = response.headers.get("Fitbit-Rate-Limit-Reset")
    if reset and reset.strip().isdigit():
        return float(reset)
    return None


@dataclass
class ApiSession:
    """One participant's HTTP session against one provider.

    ``key`` is the rate-limit key (provider + participant). ``project_limiter`` and
    ``project_key``, when set, are a second budget every request must also fit (the Google
    project's quota). ``sleep`` is injectable so tests of backoff do not have to wait for real.
    """

    key: str
    limiter: SlidingWindowLimiter
    project_limiter: SlidingWindowLimiter | None = None
    project_key: str = ""
    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_s: float = 1.0
    max_wait_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    calls: int = 0
    retries: int = 0
    rate_limited_waits: int = 0
    http: requests.Session = field(default_factory=requests.Session)
    _not_before: float = 0.0

    def send(self, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response:
        """Send with rate limiting and retries; returns the final response (2xx or 4xx).

        ``what`` names the call in errors ("google_health heart-rate list page 3"); URLs are not
        put in messages because query strings can be long and headers hold tokens.
        """
        kwargs.setdefault("timeout", self.timeout_s)
        attempt = 0
        while True:
            self._respect_reset()
            budgets = [(self.limiter, self.key)]
            if self.project_limiter is not None:
                budgets.append((self.project_limiter, self.project_key))
            try:
                with slots(budgets):
                    self.calls += 1
                    response = self.http.request(method, url, **kwargs)
            except WaitTooLong as exc:
                raise RateLimited(str(exc)) from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                attempt = self._backoff(attempt, f"{what}: {kind}")
                continue
            self._note_rate_headers(response)
            if response.status_code == 429:
                wait = retry_after_seconds(response)
                if wait is None:
                    wait = self.backoff_s * (2 ** attempt)
                if wait > self.max_wait_s:
                    raise RateLimited(
                        f"{what}: rate limited (429) and the provider's window resets in {wait:.0f} s "
                        f"(more than the {self.max_wait_s:.0f} s we wait); re-run after it resets"
                    )
                if attempt >= self.max_retries:
                    raise RateLimited(f"{what}: still rate limited (429) after {attempt} retries")
                log.info("%s: 429, waiting %.1f s as the provider asks", what, wait)
                self.rate_limited_waits += 1
                self.sleep(wait)
                attempt += 1
                continue
            if response.status_code >= 500:
                attempt = self._backoff(attempt, f"{what}: server error {response.status_code}")
                continue
            return response

    def _backoff(self, attempt: int, problem: str) -> int:
        if attempt >= self.max_retries:
            raise ApiError(f"{problem}; gave up after {attempt + 1} attempts")
        pause = self.backoff_s * (2 ** attempt) * (0.5 + random.random() / 2)
        log.warning("%s; retrying in %.1f s", problem, pause)
        self.retries += 1
        self.sleep(pause)
        return attempt + 1

    def _note_rate_headers(self, response: requests.Response) -> None:
        """Legacy Fitbit tells us the remaining hourly budget: stop before spending the last call."""
        remaining = response.headers.get("Fitbit-Rate-Limit-Remaining")
        reset = response.headers.get("Fitbit-Rate-Limit-Reset")
        if remaining is not None and remaining.strip() == "0" and reset and reset.strip().isdigit():
            self._not_before = time.monotonic() + float(reset)

    def _respect_reset(self) -> None:
        wait = self._not_before - time.monotonic()
        if wait <= 0:
            return
        if wait > self.max_wait_s:
            raise RateLimited(
                f"{self.key}: the provider's rate-limit budget is spent and resets in {wait:.0f} s; re-run after it resets"
            )
        self.sleep(wait)

