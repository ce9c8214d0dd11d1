"""Loopback simulator of the legacy Fitbit Web API and Fitbit OAuth 2.0, in two modes.

``mode="gone"`` (the default, matching the announced shutdown) answers HTTP 410 on every API
and OAuth path. ``mode="working"`` serves the endpoints a pipeline used before the shutdown:

* OAuth: ``/oauth2/authorize`` (approves at once; PKCE accepted; account from ``login_hint``),
  ``/oauth2/token`` with HTTP Basic client authentication and SINGLE-USE refresh tokens
  (reusing a spent one answers 400 ``invalid_grant`` in Fitbit's ``{"errors": [...]}`` shape),
  ``/oauth2/revoke``.
* Intraday heart rate (``1sec``/``1min``/``5min``/``15min``), steps/calories/distance/floors/
  elevation (``1min``/``5min``/``15min``), sleep log v1.2 (``levels.data`` + ``shortData``;
  naps given with ``SyntheticCohort.add_nap`` as "classic" logs; optionally a recent night
  without levels in a ``meta.state: "pending"`` response, see ``sleep_processing``),
  SpO2/HRV/breathing-rate ``all.json``, profile and devices.

Intraday ``time`` values are LOCAL wall-clock times without an offset (``?timezone=UTC``
switches HR and activity to a UTC day). On a fall-back DST day the repeated hour therefore
appears twice and on a spring-forward day the skipped hour is absent; sleep timestamps use the
offset in force when the sleep started. Times are in the user's home zone even for a user with
``SimUser.travel``: the legacy API cannot say in which zone a past sample was taken (offset-less
times, the profile's current zone only), so there is no faithful travelling form to serve.
Every API response carries ``Fitbit-Rate-Limit-*``
headers; the per-user budget (150/hour) resets at the top of the hour and a spent budget
answers 429.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from wearable_assets_dev.simulators.cohort import (
    UTC,
    OffsetTable,
    SimDay,
    SimUser,
    SleepSession,
    SyntheticCohort,
    concatenate,
    from_epoch,
    local_midnight_utc,
    offset_table,
    to_epoch,
)
from wearable_assets_dev.simulators.common import (
    AuthCode,
    LoopbackSimulator,
    OAuthSimulatorState,
    SimulatorServer,
    add_clock_routes,
    basic_credentials,
    form_fields,
    make_app,
    redirect_back,
)

MODES = ("working", "gone")
SCOPES = ("activity", "heartrate", "sleep", "oxygen_saturation", "respiratory_rate", "profile", "settings",
          "temperature")
ACCESS_TOKEN_LIFETIME_S = 28800
DOCS_HINT = "Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process."
GONE_MESSAGE = ("The Fitbit Web API and Fitbit OAuth endpoints have been turned off. "
                "Use the Google Health API instead.")
MAX_RANGE_DAYS = {"heart": 1, "activity": 1, "sleep": 100, "spo2": 30, "hrv": 30, "br": 30}
ACTIVITY_RESOURCES = ("steps", "calories", "distance", "floors", "elevation")
KM_PER_MILE = 1.609344
FEET_PER_METRE = 3.28084
METRES_PER_FLOOR = 3.048


class FitbitError(Exception):
    """A Fitbit-shaped error reply: ``{"errors": [{"errorType", "message"[, "fieldName"]}], "success": false}``."""

    def __init__(self, status: int, error_type: str, message: str, field_name: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message, self.field_name = status, error_type, message, field_name
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"errorType": self.error_type}
        if self.field_name is not None:
            error["fieldName"] = self.field_name
        error["message"] = self.message
        return {"errors": [error], "success": False}


def fitbit_error_body(status: int, kind: str) -> dict[str, Any]:
    """Bodies for the common fault middleware (injected 5xx, expired token) in Fitbit's shape."""
    if kind == "expired_token":
        return FitbitError(401, "expired_token", f"Access token expired: (injected). {DOCS_HINT}").body()
    return FitbitError(status, "request", "An error occurred with the Fitbit Web API while processing the request. "
                       f"Error id: sim-{secrets.token_hex(4)}", field_name=str(status)).body()


@dataclass
class _Grant:
    """One issued token pair, remembered so a spent refresh token can be recognised."""

    user_id: str
    scopes: tuple[str, ...]
    access_token: str
    refresh_token: str
    expires: float
    response: dict[str, Any]
    issued: float = field(default_factory=time.time)
    used: bool = False  # its access or refresh token has been used (ends the retry grace)


class FitbitLegacyState(OAuthSimulatorState):
    """Faults, call log, token calls, partial consent and hourly budgets (``OAuthSimulatorState``)
    plus the legacy OAuth server's rotating tokens."""

    def __init__(self, rate_limit_per_hour: int = 150, refresh_grace_s: float = 0.0) -> None:
        super().__init__(rate_limit_per_hour, 3600, aligned=True)
        self.fault_body = fitbit_error_body
        self.grants: dict[str, _Grant] = {}  # by access token
        self.by_refresh: dict[str, _Grant] = {}  # every refresh token ever issued
        self.active_refresh: dict[str, str] = {}  # user -> the one valid refresh token
        self.spent_refresh: dict[str, tuple[_Grant, float]] = {}  # old refresh -> (grant it produced, when)
        #: Seconds during which re-sending a just-spent refresh token returns the same reply (0 = never).
        self.refresh_grace_s = refresh_grace_s
        self._lock = threading.Lock()

    def issue_tokens(self, user_id: str, legacy_id: str, scopes: Iterable[str] = SCOPES) -> dict[str, Any]:
        """Mint a token pair for ``user_id``; the user's previous refresh token stops working."""
        scopes = tuple(scopes)
        with self._lock:
            now = int(time.time())
            header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').rstrip(b"=").decode()
            claims = {"aud": "SIMCLI", "sub": legacy_id, "iss": "Fitbit", "typ": "access_token",
                      "scopes": " ".join(scopes), "exp": now + ACCESS_TOKEN_LIFETIME_S, "iat": now,
                      "jti": secrets.token_hex(8)}
            payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            access = f"{header}.{payload}.{secrets.token_urlsafe(32)}"
            refresh = secrets.token_hex(32)
            response = {"access_token": access, "expires_in": ACCESS_TOKEN_LIFETIME_S, "refresh_token": refresh,
                        "scope": " ".join(scopes), "token_type": "Bearer", "user_id": legacy_id}
            grant = _Grant(user_id, scopes, access, refresh, time.time() + ACCESS_TOKEN_LIFETIME_S, response)
            self.grants[access] = grant
            self.by_refresh[refresh] = grant
            self.active_refresh[user_id] = refresh
        return dict(response)

    def revoke(self, user_id: str) -> None:
        """The user (or the app) revoked access: every token of the user is dead."""
        with self._lock:
            self.active_refresh.pop(user_id, None)
            for token in [t for t, g in self.grants.items() if g.user_id == user_id]:
                del self.grants[token]

    def expire_access_tokens(self, user_id: str | None = None) -> None:
        with self._lock:
            for grant in self.grants.values():
                if user_id is None or grant.user_id == user_id:
                    grant.expires = 0.0



def _local(epoch: int, millis: bool = True) -> str:
    """Offset-less wall-clock timestamp as the legacy API writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + (".000" if millis else "")


def _clock(epoch: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(epoch))


class FitbitLegacySimulator(LoopbackSimulator):
    """The legacy Fitbit Web API (+ OAuth) over loopback HTTP, serving ``cohort``."""

    def __init__(
        self,
        cohort: SyntheticCohort,
        client_id: str = "SIMCLI",
        client_secret: str = "sim-fitbit-secret",
        mode: str = "gone",
        rate_limit_per_hour: int = 150,
        refresh_grace_s: float = 0.0,
        port: int = 0,
    ) -> None:
        self.cohort = cohort
        self.client_id = client_id
        self.client_secret = client_secret
        #: How long after its end a synced night is served without ``levels`` in a response marked
        #: ``meta.state: "pending"`` (public client code skips such responses; the state is not
        #: documented). Zero (the default): levels at once.
        self.sleep_processing = timedelta(0)
        self.state = FitbitLegacyState(rate_limit_per_hour, refresh_grace_s)
        self.set_mode(mode)
        self.app = make_app("Fitbit Web API (legacy) simulator", self.state)
        self._server = SimulatorServer(self.app, port=port)
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = []
        self._register()

    # lifecycle ----------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """``working`` or ``gone`` (410 everywhere); can be switched while the server runs."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode

    @property
    def base_url(self) -> str:
        """API root: ``{base_url}/1/user/-/...`` (also the root of the OAuth paths)."""
        return self.url

    @property
    def auth_url(self) -> str:
        return self.url + "/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/oauth2/token"

    @property
    def revoke_url(self) -> str:
        return self.url + "/oauth2/revoke"

    # dispatch -----------------------------------------------------------------------------
    def _register(self) -> None:
        user = r"/1/user/(?P<uid>[^/]+)"
        dates = r"/date/(?P<d1>[^/]+)/(?P<d2>[^/]+)"
        window = r"(?:/time/(?P<t1>\d\d:\d\d)/(?P<t2>\d\d:\d\d))?"
        self._routes = [
            ("GET", re.compile(r"^/oauth2/authorize$"), self._authorize_page),
            ("POST", re.compile(r"^/oauth2/token$"), self._token),
            ("POST", re.compile(r"^/oauth2/revoke$"), self._revoke),
            ("GET", re.compile(rf"^{user}/activities/heart{dates}/(?P<detail>[^/.]+){window}\.json$"), self._heart),
            ("GET", re.compile(rf"^{user}/activities/(?P<res>[a-z-]+){dates}/(?P<detail>[^/.]+){window}\.json$"),
             self._activity),
            ("GET", re.compile(r"^/1\.2/user/(?P<uid>[^/]+)/sleep/date/(?P<d1>[^/.]+)(?:/(?P<d2>[^/.]+))?\.json$"),
             self._sleep),
            ("GET", re.compile(rf"^{user}/(?P<kind>spo2|hrv|br)/date/(?P<d1>[^/]+?)(?:/(?P<d2>[^/]+?))?/all\.json$"),
             self._night),
            ("GET", re.compile(rf"^{user}/profile\.json$"), self._profile),
            ("GET", re.compile(rf"^{user}/devices\.json$"), self._devices),
        ]

        add_clock_routes(self.app, self.cohort)

        @self.app.post("/_sim/mode")
        async def _set_mode(body: dict[str, Any]) -> dict[str, str]:
            self.set_mode(str(body.get("mode")))
            return {"mode": self.mode}

        @self.app.post("/_sim/users/{user_id}")
        async def _admin_user(user_id: str, body: dict[str, Any]) -> dict[str, str]:
            """Any of ``revoke``, ``expire_access_tokens`` (true), ``rate_limit_per_hour`` (int or
            null), ``granted_scopes`` (list or null)."""
            self.cohort.user(user_id)
            if body.get("revoke"):
                self.state.revoke(user_id)
            if body.get("expire_access_tokens"):
                self.state.expire_access_tokens(user_id)
            if "rate_limit_per_hour" in body:
                self.state.set_rate_limit(user_id, body["rate_limit_per_hour"])
            if "granted_scopes" in body:
                self.state.set_granted_scopes(user_id, body["granted_scopes"])
            return {"status": "ok"}

        @self.app.exception_handler(FitbitError)
        async def _fitbit_error(request: Request, exc: FitbitError) -> JSONResponse:
            # Errors raised after the budget was charged still carry the rate-limit headers.
            headers = {**getattr(request.state, "rate_headers", {}), **exc.headers}
            return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

        @self.app.api_route("/{path:path}", methods=["GET", "POST", "DELETE", "PUT"])
        async def _dispatch(request: Request, path: str) -> Response:
            if self.mode == "gone":
                raise FitbitError(410, "request", GONE_MESSAGE)
            for method, pattern, handler in self._routes:
                match = pattern.match(request.url.path)
                if match and request.method == method:
                    return await handler(request, **{k: v for k, v in match.groupdict().items()})
            raise FitbitError(404, "not_found", "The API you are requesting could not be found.")

    # OAuth --------------------------------------------------------------------------------
    async def _authorize_page(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id:
            raise FitbitError(400, "invalid_request", f"Invalid client_id: {q.get('client_id')}")
        redirect_uri = q.get("redirect_uri")
        if not redirect_uri:
            raise FitbitError(400, "invalid_request", "Missing parameters: redirect_uri")
        if q.get("response_type") != "code":
            raise FitbitError(400, "unsupported_response_type", "Only response_type=code is simulated")
        challenge, method = q.get("code_challenge"), q.get("code_challenge_method") or "S256"
        if challenge is not None:
            if method != "S256":
                raise FitbitError(400, "invalid_request", "Unsupported code_challenge_method")
            if not 43 <= len(challenge) <= 128:
                raise FitbitError(400, "invalid_request", "The code_challenge parameter length must be between 43 and 128")
        requested = tuple(s for s in (q.get("scope") or "").split() if s)
        if not requested:
            raise FitbitError(400, "invalid_request", "Missing parameters: scope")
        hint, granted = self.state.consent(q.get("login_hint"), requested, list(self.cohort.users))
        if hint is None:
            return redirect_back(redirect_uri, q.get("state"), error="access_denied")
        code = self.state.new_code(AuthCode(hint, redirect_uri, granted, challenge, method))
        return redirect_back(redirect_uri, q.get("state"), code=code)

    async def _token(self, request: Request) -> JSONResponse:
        form = await form_fields(request)
        grant_type = form.get("grant_type", "")
        self.state.token_calls[grant_type or "(none)"] += 1
        creds = basic_credentials(request)
        if creds is None:
            raise FitbitError(401, "invalid_request", "Authorization header required.")
        if creds != (self.client_id, self.client_secret):
            raise FitbitError(401, "invalid_client", f"Invalid authorization header. Client id invalid. {DOCS_HINT}")
        if grant_type == "authorization_code":
            return JSONResponse(self._exchange_code(form))
        if grant_type == "refresh_token":
            return JSONResponse(self._refresh(form))
        raise FitbitError(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type}. {DOCS_HINT}")

    def _exchange_code(self, form: dict[str, str]) -> dict[str, Any]:
        code, problem = self.state.redeem_code(form)
        if code is None:
            raise {
                "code": FitbitError(400, "invalid_grant", f"Authorization code invalid: {form.get('code', '')} {DOCS_HINT}"),
                "redirect_uri": FitbitError(400, "invalid_request", f"Invalid redirect_uri parameter value. {DOCS_HINT}"),
                "code_verifier": FitbitError(400, "invalid_grant", f"Invalid code_verifier. {DOCS_HINT}"),
            }[problem]
        user = self.cohort.user(code.user_id)
        return self.state.issue_tokens(user.user_id, user.legacy_user_id or user.user_id, code.scopes)

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token")
        if not token:
            raise FitbitError(400, "invalid_request", f"Missing parameters: refresh_token {DOCS_HINT}")
        state = self.state
        with state._lock:
            grant = state.by_refresh.get(token)
            current = grant is not None and state.active_refresh.get(grant.user_id) == token
            spent = state.spent_refresh.get(token)
        if not current:
            if spent is not None and state.refresh_grace_s > 0:
                new_grant, at = spent
                if not new_grant.used and time.time() - at <= state.refresh_grace_s:
                    return dict(new_grant.response)  # identical retry inside the grace window
            raise FitbitError(400, "invalid_grant", f"Refresh token invalid: {token}. {DOCS_HINT}")
        assert grant is not None
        user = self.cohort.user(grant.user_id)
        minted = state.issue_tokens(user.user_id, user.legacy_user_id or user.user_id, grant.scopes)
        with state._lock:
            grant.used = True
            state.spent_refresh[token] = (state.grants[minted["access_token"]], time.time())
        return minted

    async def _revoke(self, request: Request) -> JSONResponse:
        if basic_credentials(request) != (self.client_id, self.client_secret):
            raise FitbitError(401, "invalid_client", f"Invalid authorization header. {DOCS_HINT}")
        token = (await form_fields(request)).get("token", "")
        grant = self.state.grants.get(token) or self.state.by_refresh.get(token)
        if grant is not None:
            self.state.revoke(grant.user_id)
        return JSONResponse({})

    # API plumbing -------------------------------------------------------------------------
    def _api_user(self, request: Request, uid: str, scope: str) -> tuple[SimUser, dict[str, str]]:
        """Authenticate, charge the hourly budget, check scope; returns the user and rate headers."""
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        grant = self.state.grants.get(token or "")
        key = grant.user_id if grant is not None else "(unauthenticated)"
        allowed, remaining, reset, limit = self.state.rate_limits.hit(key)
        headers = {"Fitbit-Rate-Limit-Limit": str(limit), "Fitbit-Rate-Limit-Remaining": str(remaining),
                   "Fitbit-Rate-Limit-Reset": str(reset)}
        request.state.rate_headers = headers
        if token is None:
            raise FitbitError(401, "invalid_request", "Authorization header required.", headers=headers)
        if grant is None:
            raise FitbitError(401, "invalid_token", f"Access token invalid: {token}. {DOCS_HINT}", headers=headers)
        if grant.expires <= time.time():
            raise FitbitError(401, "expired_token", f"Access token expired: {token}. {DOCS_HINT}", headers=headers)
        grant.used = True
        if not allowed:
            raise FitbitError(429, "system", "Too Many Requests", field_name="n/a",
                              headers=dict(headers, **{"Retry-After": str(reset)}))
        user = self.cohort.user(grant.user_id)
        if uid not in ("-", user.legacy_user_id, user.user_id):
            raise FitbitError(403, "insufficient_permissions",
                              "The caller is not authorized to view the requested resource.", headers=headers)
        if scope not in grant.scopes:
            raise FitbitError(403, "insufficient_scope",
                              f"This application does not have permission to access {scope} data. {DOCS_HINT}",
                              headers=headers)
        return user, headers

    def _parse_date(self, user: SimUser, text: str, field_name: str) -> date:
        if text == "today":
            return self.cohort.local_today(user.user_id)
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise FitbitError(400, "validation", f"Invalid date:{text}", field_name=field_name) from None

    def _date_range(self, user: SimUser, d1: str, d2: str | None, kind: str) -> tuple[date, date]:
        first = self._parse_date(user, d1, "date" if d2 in (None, "1d") else "startDate")
        last = first if d2 in (None, "1d") else self._parse_date(user, d2 or "", "endDate")
        if last < first:
            raise FitbitError(400, "validation", "The end date must be on or after the start date.", "endDate")
        if (last - first).days >= MAX_RANGE_DAYS[kind] + (1 if kind in ("heart", "activity") else 0):
            raise FitbitError(400, "validation", f"The maximum date range is {MAX_RANGE_DAYS[kind]} days "
                              "for this resource.", "endDate")
        return first, last

    def _minutes(self, user: SimUser, first: date, last: date, utc: bool):
        """Concatenated synced data for ``[first, last]`` in local days (or UTC days) and the
        offset used to print clock times (0 in UTC mode)."""
        if utc:
            a = to_epoch(datetime.combine(first, datetime.min.time(), tzinfo=UTC))
            b = to_epoch(datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=UTC))
        else:
            a = to_epoch(local_midnight_utc(first, user.tz))
            b = to_epoch(local_midnight_utc(last + timedelta(days=1), user.tz))
        days = self.cohort.synced_days(user.user_id, from_epoch(a), from_epoch(b))
        conc = concatenate(days, a, b)
        table = offset_table(user.tz, a - 86400, b + 86400)
        offsets_m = np.zeros_like(conc.minute_starts) if utc else table.at(conc.minute_starts)
        offsets_h = np.zeros_like(conc.hr_times) if utc else table.at(conc.hr_times)
        return conc, offsets_m, offsets_h

    @staticmethod
    def _window_mask(local: np.ndarray, t1: str | None, t2: str | None) -> np.ndarray:
        if t1 is None or t2 is None:
            return np.ones(local.size, dtype=bool)
        sod = local % 86400
        lo = int(t1[:2]) * 3600 + int(t1[3:]) * 60
        hi = int(t2[:2]) * 3600 + int(t2[3:]) * 60 + 59
        return (sod >= lo) & (sod <= hi)

    @staticmethod
    def _day_labels(local: np.ndarray) -> np.ndarray:
        return local // 86400

    # intraday -----------------------------------------------------------------------------
    async def _heart(self, request: Request, uid: str, d1: str, d2: str, detail: str,
                     t1: str | None = None, t2: str | None = None) -> JSONResponse:
        user, headers = self._api_user(request, uid, "heartrate")
        steps = {"1sec": 1, "1min": 60, "5min": 300, "15min": 900}
        if detail not in steps:
            raise FitbitError(400, "validation", f"Invalid detail level: {detail}. Use 1sec, 1min, 5min or 15min.",
                              "detail-level")
        first, last = self._date_range(user, d1, d2, "heart")
        utc = request.query_params.get("timezone", "").upper() == "UTC"
        conc, off_m, off_h = self._minutes(user, first, last, utc)
        local = conc.hr_times + off_h
        keep = self._window_mask(local, t1, t2)
        local, bpm = local[keep], conc.hr_bpm[keep].astype(float)
        step = steps[detail]
        if step == 1:
            dataset = [{"time": _clock(int(t)), "value": int(v)} for t, v in zip(local.tolist(), bpm.tolist())]
        else:
            # Group by physical bucket (so the repeated fall-back hour is not merged), label locally.
            phys = conc.hr_times[keep] // step
            dataset = []
            if phys.size:
                cuts = np.flatnonzero(np.diff(phys)) + 1
                for grp_t, grp_v in zip(np.split(local, cuts), np.split(bpm, cuts)):
                    dataset.append({"time": _clock(int(grp_t[0] // step * step)), "value": int(round(grp_v.mean()))})
        labels = self._day_labels(conc.minute_starts + off_m)
        minute_hr = self._minute_mean_hr(conc)
        summaries = []
        for d in (first + timedelta(days=i) for i in range((last - first).days + 1)):
            sel = labels == (d - date(1970, 1, 1)).days
            resting = self.cohort.synced_day(user.user_id, d).resting_hr
            summaries.append(self._heart_summary(user, d, resting, minute_hr[sel], conc.calories[sel]))
        body = {
            "activities-heart": summaries,
            "activities-heart-intraday": {"dataset": dataset, "datasetInterval": 1 if step == 1 else step // 60,
                                          "datasetType": "second" if step == 1 else "minute"},
        }
        return JSONResponse(body, headers=headers)

    @staticmethod
    def _minute_mean_hr(conc) -> np.ndarray:
        """Mean bpm per minute of ``conc`` (NaN where the minute has no sample)."""
        if conc.minute_starts.size == 0:
            return np.zeros(0)
        idx = np.searchsorted(conc.minute_starts, conc.hr_times, side="right") - 1
        ok = idx >= 0
        sums = np.bincount(idx[ok], weights=conc.hr_bpm[ok], minlength=conc.minute_starts.size)
        counts = np.bincount(idx[ok], minlength=conc.minute_starts.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    @staticmethod
    def _heart_summary(user: SimUser, day: date, resting: int | None, hr: np.ndarray,
                       kcal: np.ndarray) -> dict[str, Any]:
        """``activities-heart[]`` entry: zones (with minutes/calories once data exists), resting HR
        once the night has synced."""
        base = resting or int(user.resting_hr or 60)
        reserve = user.max_hr - base
        bounds = [30, base + int(0.4 * reserve), base + int(0.6 * reserve), base + int(0.85 * reserve), user.max_hr]
        has_data = bool(np.isfinite(hr).any())
        zones = []
        for name, lo, hi in zip(("Out of Range", "Fat Burn", "Cardio", "Peak"), bounds[:-1], bounds[1:]):
            zone: dict[str, Any] = {"max": hi, "min": lo, "name": name}
            if has_data:
                in_zone = np.isfinite(hr) & (hr >= lo) & (hr < hi)
                zone = {"caloriesOut": round(float(kcal[in_zone].sum()), 5), **zone, "minutes": int(in_zone.sum())}
            zones.append(zone)
        value: dict[str, Any] = {"customHeartRateZones": [], "heartRateZones": zones}
        if resting is not None:
            value["restingHeartRate"] = resting
        return {"dateTime": day.isoformat(), "value": value}

    async def _activity(self, request: Request, uid: str, res: str, d1: str, d2: str, detail: str,
                        t1: str | None = None, t2: str | None = None) -> JSONResponse:
        if res not in ACTIVITY_RESOURCES:
            raise FitbitError(404, "not_found", "The API you are requesting could not be found.")
        user, headers = self._api_user(request, uid, "activity")
        steps = {"1min": 60, "5min": 300, "15min": 900}
        if detail not in steps:
            raise FitbitError(400, "validation", f"Invalid detail level: {detail}. Use 1min, 5min or 15min.",
                              "detail-level")
        first, last = self._date_range(user, d1, d2, "activity")
        utc = request.query_params.get("timezone", "").upper() == "UTC"
        imperial = request.headers.get("accept-language", "").replace("-", "_") == "en_US"
        conc, off_m, _off_h = self._minutes(user, first, last, utc)
        bmr = user.bmr_kcal_per_min
        # Dense and zero-filled: steps etc. are 0 when off-wrist or not yet synced; calories fall
        # back to the basal rate, as the legacy API reported for minutes without movement data.
        if res == "steps":
            values = conc.steps.astype(float)
        elif res == "calories":
            values = np.where(conc.worn, conc.calories, bmr)
        elif res == "distance":
            values = conc.distance_m / 1000 / (KM_PER_MILE if imperial else 1)
        elif res == "floors":
            values = conc.floors.astype(float)
        else:
            values = conc.floors * METRES_PER_FLOOR * (FEET_PER_METRE if imperial else 1)
        local = conc.minute_starts + off_m
        keep = self._window_mask(local, t1, t2)
        step = steps[detail]
        level = np.where(conc.worn, conc.intensity, 0)
        mets = np.round(np.where(conc.worn, conc.calories, bmr) / bmr * 10).astype(int)
        dataset = []
        phys = conc.minute_starts // step
        idx = np.flatnonzero(keep)
        if idx.size:
            cuts = np.flatnonzero(np.diff(phys[idx])) + 1
            for group in np.split(idx, cuts):
                entry: dict[str, Any] = {"time": _clock(int(local[group[0]] // step * step))}
                total = float(values[group].sum())
                if res == "calories":
                    entry = {"level": int(level[group].max()), "mets": int(mets[group].mean()), **entry,
                             "value": round(total, 4)}
                elif res in ("steps", "floors"):
                    entry["value"] = int(round(total))
                else:
                    entry["value"] = round(total, 5)
                dataset.append(entry)
        labels = self._day_labels(local)
        daily = []
        span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        for d in span:
            total = float(values[labels == (d - date(1970, 1, 1)).days].sum())
            text = str(int(round(total))) if res in ("steps", "calories", "floors") else f"{total:.2f}"
            daily.append({"dateTime": d.isoformat(), "value": text})
        body = {f"activities-{res}": daily,
                f"activities-{res}-intraday": {"dataset": dataset, "datasetInterval": step // 60,
                                               "datasetType": "minute"}}
        return JSONResponse(body, headers=headers)

    # sleep and nightly --------------------------------------------------------------------
    async def _sleep(self, request: Request, uid: str, d1: str, d2: str | None = None) -> JSONResponse:
        user, headers = self._api_user(request, uid, "sleep")
        first, last = self._date_range(user, d1, d2, "sleep")
        logs = []
        pending = False
        synced = self.cohort.last_sync(user.user_id)
        for i in range((last - first).days + 1):
            sim_day = self.cohort.synced_day(user.user_id, first + timedelta(days=i))
            if sim_day.sleep is not None:
                log = self._sleep_log(user, sim_day)
                if synced < sim_day.sleep.end + self.sleep_processing:
                    del log["levels"]  # levels not computed yet
                    pending = True
                logs.append(log)
            logs.extend(self._nap_log(user, nap) for nap in sim_day.naps)
        logs.sort(key=lambda log: log["startTime"], reverse=True)
        body: dict[str, Any] = {"sleep": logs}
        if pending:
            body["meta"] = {"state": "pending"}
        if d2 is None:
            stages = {lv: sum(log["levels"]["summary"][lv]["minutes"] for log in logs
                              if log["type"] == "stages" and "levels" in log)
                      for lv in ("deep", "light", "rem", "wake")}
            body["summary"] = {"stages": stages, "totalMinutesAsleep": sum(log["minutesAsleep"] for log in logs),
                               "totalSleepRecords": len(logs),
                               "totalTimeInBed": sum(log["timeInBed"] for log in logs)}
        return JSONResponse(body, headers=headers)

    def _nap_log(self, user: SimUser, nap: SleepSession) -> dict[str, Any]:
        """A nap under 3 hours: a "classic" log (``asleep``/``restless``/``awake`` levels, infoCode 2:
        "Sleep period was too short"), not the main sleep."""
        offset = int(nap.start.astimezone(user.tz).utcoffset().total_seconds())  # type: ignore[union-attr]
        n0, total = to_epoch(nap.start), nap.seconds
        restless, awake = min(240, total // 4), min(120, total // 4)
        asleep = total - restless - awake
        plan = [("asleep", asleep), ("restless", restless), ("awake", awake)]
        data, t = [], n0
        for level, secs in plan:
            if secs > 0:
                data.append({"dateTime": _local(t + offset), "level": level, "seconds": secs})
                t += secs
        summary = {lv: {"count": int(secs > 0), "minutes": secs // 60} for lv, secs in plan}
        return {
            "dateOfSleep": nap.date_of_sleep.isoformat(), "duration": total * 1000, "efficiency": 100 * asleep // total,
            "endTime": _local(n0 + total + offset), "infoCode": 2, "isMainSleep": False,
            "levels": {"data": data, "summary": summary}, "logId": nap.log_id, "logType": "auto_detected",
            "minutesAfterWakeup": 0, "minutesAsleep": asleep // 60, "minutesAwake": (restless + awake) // 60,
            "minutesToFallAsleep": 0, "startTime": _local(n0 + offset), "timeInBed": total // 60, "type": "classic",
        }

    def _sleep_log(self, user: SimUser, day: SimDay) -> dict[str, Any]:
        s = day.sleep
        assert s is not None
        offset = int(s.start.astimezone(user.tz).utcoffset().total_seconds())  # type: ignore[union-attr]
        secs, counts = s.level_seconds(), s.level_counts()

        def entries(stages) -> list[dict[str, Any]]:
            return [{"dateTime": _local(to_epoch(st.start) + offset), "level": st.level, "seconds": st.seconds}
                    for st in stages]

        summary = {lv: {"count": counts[lv], "minutes": secs[lv] // 60,
                        "thirtyDayAvgMinutes": secs[lv] // 60 + (user.seed or 0) % 7 - 3}
                   for lv in ("deep", "light", "rem", "wake")}
        return {
            "dateOfSleep": s.date_of_sleep.isoformat(),
            "duration": s.seconds * 1000,
            "efficiency": s.efficiency,
            "endTime": _local(to_epoch(s.end) + offset),
            "infoCode": 0,
            "isMainSleep": s.is_main,
            "levels": {"data": entries(s.stages), "shortData": entries(s.short_wakes), "summary": summary},
            "logId": s.log_id,
            "logType": "auto_detected",
            "minutesAfterWakeup": 0,
            "minutesAsleep": s.minutes_asleep,
            "minutesAwake": s.minutes_awake,
            "minutesToFallAsleep": 0,
            "startTime": _local(to_epoch(s.start) + offset),
            "timeInBed": s.time_in_bed,
            "type": "stages",
        }

    async def _night(self, request: Request, uid: str, kind: str, d1: str, d2: str | None = None) -> JSONResponse:
        scope = {"spo2": "oxygen_saturation", "hrv": "heartrate", "br": "respiratory_rate"}[kind]
        user, headers = self._api_user(request, uid, scope)
        first, last = self._date_range(user, d1, d2, kind)
        table = offset_table(user.tz, to_epoch(local_midnight_utc(first, user.tz)) - 86400,
                             to_epoch(local_midnight_utc(last, user.tz)) + 2 * 86400)
        entries = []
        for i in range((last - first).days + 1):
            day = self.cohort.synced_day(user.user_id, first + timedelta(days=i))
            entry = self._night_entry(kind, day, table)
            if entry is not None:
                entries.append(entry)
        if kind == "spo2":
            if d2 is None:
                body: Any = entries[0] if entries else {"dateTime": first.isoformat(), "minutes": []}
            else:
                body = entries
        else:
            body = {kind: entries}
        return JSONResponse(body, headers=headers)

    @staticmethod
    def _night_entry(kind: str, day: SimDay, table: OffsetTable) -> dict[str, Any] | None:
        def local(at: datetime, millis: bool) -> str:
            t = to_epoch(at)
            return _local(t + int(table.at(t)), millis)

        if kind == "spo2":
            if not day.spo2:
                return None
            return {"dateTime": day.date.isoformat(),
                    "minutes": [{"value": s.percent, "minute": local(s.at, False)} for s in day.spo2]}
        if kind == "hrv":
            if not day.hrv:
                return None
            return {"minutes": [{"minute": local(w.start, True),
                                 "value": {"rmssd": w.rmssd, "coverage": w.coverage, "hf": w.hf, "lf": w.lf}}
                                for w in day.hrv], "dateTime": day.date.isoformat()}
        b = day.breathing
        if b is None:
            return None

        def rate(v: float | None) -> dict[str, float]:
            return {"breathingRate": v if v is not None else -1}

        return {"value": {"deepSleepSummary": rate(b.deep), "remSleepSummary": rate(b.rem),
                          "fullSleepSummary": rate(b.full), "lightSleepSummary": rate(b.light)},
                "dateTime": day.date.isoformat()}

    # profile and devices ------------------------------------------------------------------
    async def _profile(self, request: Request, uid: str) -> JSONResponse:
        user, headers = self._api_user(request, uid, "profile")
        offset = self.cohort.now.astimezone(user.tz).utcoffset()
        return JSONResponse({"user": {
            "encodedId": user.legacy_user_id, "displayName": f"Sim {user.user_id}", "timezone": user.time_zone,
            "offsetFromUTCMillis": int(offset.total_seconds() * 1000) if offset else 0,
            "memberSince": "2024-01-15", "locale": "en_US", "age": user.age,
        }}, headers=headers)

    async def _devices(self, request: Request, uid: str) -> JSONResponse:
        user, headers = self._api_user(request, uid, "settings")
        synced = self.cohort.last_sync(user.user_id)
        level = 30 + (user.seed or 0) % 70
        return JSONResponse([{
            "battery": "High" if level > 60 else "Medium", "batteryLevel": level, "deviceVersion": user.device,
            "features": [], "id": str((user.seed or 0) % 10**9), "lastSyncTime": _local(
                to_epoch(synced) + int(synced.astimezone(user.tz).utcoffset().total_seconds())),  # type: ignore[union-attr]
            "mac": f"{(user.seed or 0) % 16**12:012X}", "type": "TRACKER",
        }], headers=headers)
