"""``GoogleHealthSimulator``: the server, its request checks (token, rate budget, account
switches, scopes), the query cache and the HTTP routes of the v4 data and profile methods.

What it serves is built by the sibling modules (``points``, ``rollups``, ``filters``,
``rendering``) in the terms of ``vocabulary``; Google's OAuth endpoints come from ``oauth``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections import OrderedDict
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from wearable_assets.gc_paused import gc_paused
from wearable_assets_dev.simulators.cohort import (
    UTC,
    SimDay,
    SimUser,
    SyntheticCohort,
    concatenate,
    device_offsets,
    from_epoch,
)
from wearable_assets_dev.simulators.common import (
    LoopbackSimulator,
    OrjsonResponse,
    SimulatorServer,
    add_clock_routes,
    make_app,
)
from wearable_assets_dev.simulators.google_health.filters import (
    Bound,
    bounds_mask,
    parse_filter,
    parse_literal,
    utc_window,
)
from wearable_assets_dev.simulators.google_health.oauth import GoogleHealthState, GoogleOAuthEndpoints
from wearable_assets_dev.simulators.google_health.points import PointSet, build_points
from wearable_assets_dev.simulators.google_health.rendering import EPOCH_ORDINAL, date_json, duration, rfc3339_text
from wearable_assets_dev.simulators.google_health.rollups import offset_page, range_date, rollup_value, window_values
from wearable_assets_dev.simulators.google_health.vocabulary import (
    DATA_SOURCE_FAMILIES,
    DATA_TYPES,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    NIGHT_TYPES,
    POINT_CACHE_SIZE,
    PROFILE,
    ROLLUP_KEYS,
    SERVER_PAGE_CAP,
    SESSION_PAGE_SIZE,
    SETTINGS,
    SLEEP_PROCESSING,
    ApiError,
    DataType,
    invalid,
)


class GoogleHealthSimulator(GoogleOAuthEndpoints, LoopbackSimulator):
    """Google OAuth + Google Health API v4 over loopback HTTP, serving ``cohort``."""

    def __init__(
        self,
        cohort: SyntheticCohort,
        client_id: str = "sim-google-client",
        client_secret: str = "sim-google-secret",
        rate_limit_per_minute: int = 300,
        port: int = 0,
        project_quota: int = 120_000,
        project_window_s: float = 60.0,
    ) -> None:
        """``rate_limit_per_minute``: each user's budget; ``project_quota`` per ``project_window_s``:
        the project's, shared by every user (sliding window; also ``POST /_sim/project_quota``)."""
        self.cohort = cohort
        self.client_id = client_id
        self.client_secret = client_secret
        self.state = GoogleHealthState(rate_limit_per_minute, project_quota, project_window_s)
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
            mask |= bounds_mask(bounds, points.physical, points.civil, points.dates)
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
        app.post("/_sim/project_quota")(self._admin_project_quota)
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

    async def _admin_project_quota(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sim/project_quota`` with ``limit`` (requests) and/or ``window_s``: the
        project's quota from now on, as ``state.set_project_quota``."""
        self.state.set_project_quota(body.get("limit"), body.get("window_s"))
        quota = self.state.project_quota
        return {"limit": quota.limit, "window_s": quota.window_s}

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

    async def _daily_rollup(self, request: Request, user: str, dtype: str) -> JSONResponse:
        data_type = self._dtype(dtype)
        sim_user = self._authorize(request, user, data_type.scope)
        if not data_type.rollup:
            raise invalid(f"dailyRollUp is not supported for data type {data_type.path}")
        body = await self._json_body(request)
        rng = body.get("range") or {}

        first, last = range_date(rng, "start"), range_date(rng, "end")
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
        lo = (first.toordinal() - EPOCH_ORDINAL) * 86400 - 14 * 3600
        hi = (last.toordinal() - EPOCH_ORDINAL) * 86400 + 12 * 3600
        days = self._synced_days(sim_user, lo, hi)
        conc = concatenate(days, lo, hi)
        offsets = device_offsets(sim_user, lo - 86400, hi + 86400)
        m_civil = (conc.minute_starts + offsets.at(conc.minute_starts)) // 86400 + EPOCH_ORDINAL
        h_civil = (conc.hr_times + offsets.at(conc.hr_times)) // 86400 + EPOCH_ORDINAL
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
        start, stop = offset_page(body, len(out))
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
            lo = parse_literal("physical", str(rng["startTime"]))
            hi = parse_literal("physical", str(rng["endTime"]))
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
        start, stop = offset_page(body, buckets.size)
        page = buckets[start:stop]
        values = window_values(data_type, conc, page, m_bucket, h_bucket, step, user.bmr_kcal_per_min)
        starts, key = lo + page * step, data_type.camel
        out = [{"startTime": a + "Z", "endTime": b + "Z", key: value}
               for a, b, value in zip(rfc3339_text(starts), rfc3339_text(np.minimum(hi, starts + step)), values)
               if value is not None]
        reply: dict[str, Any] = {"rollupDataPoints": out} if out else {}
        if stop < buckets.size:
            reply["nextPageToken"] = base64.urlsafe_b64encode(str(stop).encode()).decode().rstrip("=")
        return reply

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
