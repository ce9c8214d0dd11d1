"""What every simulator shares: a loopback server thread, fault injection, rate limits (fixed or
sliding windows, the latter with a log of every decision), a call log, and an optional network
latency.

Each simulator is a FastAPI app; ``SimulatorServer`` runs it with uvicorn on 127.0.0.1 in a
background thread so a pytest fixture (or the demo) can start and stop it in-process.
``OrjsonResponse`` (and ``wearable_assets.gc_paused`` around rendering) keep large replies cheap: the
simulators share the CPU with the pipeline they feed, so their cost per participant-day shows up in its measured throughput.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import math
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

# Re-exported: every simulator's state has one (``SimulatorState.latency``).
from wearable_assets_dev.simulators.latency import Latency as Latency


class OrjsonResponse(JSONResponse):
    """``JSONResponse`` encoded with orjson, several times faster on pages of thousands of points.

    The bytes are the same compact JSON (UTF-8, no spaces) as ``JSONResponse`` writes for what the
    simulators serve: floats are spelled as Python's ``repr`` does for magnitudes from 1e-4 to
    1e16 (outside it orjson may spell them differently, e.g. ``1e-9`` for ``1e-09``). Parts of the
    content may be ``orjson.Fragment`` (JSON rendered beforehand), inserted as they are."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)




@dataclass
class Fault:
    """One injected failure, consumed by the next ``count`` requests whose path starts with ``path``.

    kind: ``status`` (reply ``status`` with a JSON error body), ``timeout`` (sleep ``delay_s``
    before answering normally, longer than the client's timeout), ``malformed`` (200 with a
    truncated JSON body), ``expired_token`` (401 as for an expired access token).
    """

    path: str
    kind: str = "status"
    status: int = 503
    count: int = 1
    delay_s: float = 5.0
    body: str | None = None


@dataclass
class CallRecord:
    method: str
    path: str
    query: str
    status: int
    at: float


class SimulatorState:
    """Mutable state shared by a simulator's routes and the test that drives it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Applied to every request but the admin routes (``/_sim``), by ``FaultAndLogMiddleware``.
        self.latency = Latency()
        self.faults: list[Fault] = []
        self.calls: list[CallRecord] = []
        #: Optional provider-specific error body for injected faults: ``(status, kind) -> JSON``.
        #: ``None`` keeps the Google-style ``{"error": {...}}`` bodies below.
        self.fault_body: Callable[[int, str], Any] | None = None

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.path) and fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record(self, call: CallRecord) -> None:
        with self._lock:
            self.calls.append(call)

    def count_calls(self, path_prefix: str = "", method: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for c in self.calls if c.path.startswith(path_prefix) and (method is None or c.method == method)
            )

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()


class FaultAndLogMiddleware(BaseHTTPMiddleware):
    """Applies the latency and injected faults before routing and records every call after it."""

    def __init__(self, app: Any, state: SimulatorState) -> None:
        super().__init__(app)
        self.state = state

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        response: Response | None = None
        if not path.startswith("/_sim"):
            wait = self.state.latency.draw()
            if wait:
                await asyncio.sleep(wait)
            fault = self.state.take_fault(path)
            if fault is not None:
                if fault.kind == "timeout":
                    await asyncio.sleep(fault.delay_s)
                elif fault.kind == "malformed":
                    response = Response(fault.body or '{"dataPoints": [{"truncated', media_type="application/json")
                elif fault.kind == "expired_token":
                    response = JSONResponse(
                        self.state.fault_body(401, "expired_token") if self.state.fault_body else
                        {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                   "status": "UNAUTHENTICATED"}},
                        status_code=401,
                    )
                else:
                    response = (
                        PlainTextResponse(fault.body, status_code=fault.status)
                        if fault.body is not None
                        else JSONResponse(
                            self.state.fault_body(fault.status, fault.kind) if self.state.fault_body else
                            {"error": {"code": fault.status, "message": "injected fault"}},
                            status_code=fault.status,
                        )
                    )
        if response is None:
            response = await call_next(request)
        self.state.record(CallRecord(request.method, path, request.url.query, response.status_code, time.time()))
        return response


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (OAuth token endpoints).

    Parsed by hand so the simulators need no multipart library; a repeated field keeps its
    last value.
    """
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))


def add_admin_routes(app: FastAPI, state: SimulatorState) -> None:
    """``/_sim/*``: inject faults and read the call log over HTTP (the demo and CLI use these)."""

    @app.post("/_sim/faults")
    async def _inject(body: dict[str, Any]) -> dict[str, str]:
        state.inject(Fault(**body))
        return {"status": "injected"}

    @app.delete("/_sim/faults")
    async def _clear() -> dict[str, str]:
        state.clear_faults()
        return {"status": "cleared"}

    @app.get("/_sim/calls")
    async def _calls() -> dict[str, Any]:
        return {"calls": [c.__dict__ for c in state.calls]}


def add_clock_routes(app: FastAPI, cohort: Any) -> None:
    """``/_sim/clock``: read or move a simulated cohort's clock over HTTP, and pin a user's last
    sync (``cohort`` needs ``now``, ``advance(timedelta)`` and ``set_last_sync(user, at)``)."""

    @app.get("/_sim/clock")
    async def _clock() -> dict[str, Any]:
        return {"now": cohort.now.isoformat()}

    @app.post("/_sim/clock")
    async def _set_clock(body: dict[str, Any]) -> dict[str, Any]:
        """Body: ``{"now": "2026-11-21T12:00:00+00:00" | null}`` (null = real time), and/or
        ``{"advance_s": 3600}``, and/or ``{"last_sync": {"P001": "<iso>" | null}}``."""
        if "now" in body:
            cohort.now = datetime.fromisoformat(body["now"]) if body["now"] else None
        if body.get("advance_s"):
            cohort.advance(timedelta(seconds=float(body["advance_s"])))
        for user_id, at in (body.get("last_sync") or {}).items():
            cohort.set_last_sync(user_id, datetime.fromisoformat(at) if at else None)
        return {"now": cohort.now.isoformat()}


class FixedWindowLimiter:
    """Requests per key per window, reporting what providers put in their rate-limit headers.

    ``aligned=True`` makes windows start at wall-clock multiples of ``window_s`` (Fitbit's
    hourly budget resets at the top of the hour) instead of at a key's first request.
    """

    def __init__(self, limit: int, window_s: float, aligned: bool = False) -> None:
        self.limit = limit
        self.window_s = window_s
        self.aligned = aligned
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = defaultdict(lambda: (0.0, 0))

    def hit(self, key: str) -> tuple[bool, int, int]:
        """Count a request; returns (allowed, remaining, seconds until the window resets)."""
        now = time.time() if self.aligned else time.monotonic()
        with self._lock:
            start, used = self._windows[key]
            if now - start >= self.window_s:
                start = now - (now % self.window_s) if self.aligned else now
                used = 0
            reset = max(1, int(round(self.window_s - (now - start))))
            if used >= self.limit:
                self._windows[key] = (start, used)
                return False, 0, reset
            used += 1
            self._windows[key] = (start, used)
            return True, self.limit - used, reset

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


@dataclass(frozen=True)
class RateHit:
    """One request a ``SlidingWindowLimit`` decided on: when (``time.monotonic()``), whose budget
    (``key``) and how: ``status`` 429 when refused, 200 when let through (what the route then
    answered is in the call log)."""

    at: float
    key: str
    status: int


class SlidingWindowLimit:
    """At most ``limit`` requests per key in ANY ``window_s`` interval: a sliding window, as
    CentrePoint documents for its per-IP limit and Google's quotas behave.

    A request is counted when it is let through; a refused one is not (it did no work), and its
    ``Retry-After`` is the whole seconds until the oldest counted request leaves the window (at
    least 1). Every decision is appended to ``log`` so a test can count, at the server, the
    requests of every window. ``set`` changes the budget while serving (a control endpoint or a
    test shrinking it); the counts so far are kept.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._lock = threading.Lock()
        self._counted: dict[str, deque[float]] = defaultdict(deque)
        self.log: list[RateHit] = []

    def set(self, limit: int | None = None, window_s: float | None = None) -> None:
        with self._lock:
            self.limit = self.limit if limit is None else int(limit)
            self.window_s = self.window_s if window_s is None else float(window_s)

    def hit(self, key: str) -> tuple[bool, int]:
        """Count a request of ``key``: ``(allowed, seconds to send Retry-After when refused)``."""
        with self._lock:
            now = time.monotonic()
            counted = self._counted[key]
            while counted and now - counted[0] >= self.window_s:
                counted.popleft()
            if len(counted) < self.limit:
                counted.append(now)
                self.log.append(RateHit(now, key, 200))
                return True, 0
            self.log.append(RateHit(now, key, 429))
            return False, max(1, math.ceil(self.window_s - (now - counted[0])))

    def hits(self, key: str | None = None, status: int | None = None) -> list[RateHit]:
        """The log, of one key and/or one status if given."""
        with self._lock:
            return [h for h in self.log if (key is None or h.key == key) and (status is None or h.status == status)]

    def reset(self) -> None:
        """Forget the counts and the log (the budget stays)."""
        with self._lock:
            self._counted.clear()
            self.log.clear()


def most_in_any_window(times: Iterable[float], window_s: float) -> int:
    """The most of ``times`` inside any interval of ``window_s`` (what a sliding window counts)."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


class PerKeyLimits:
    """One budget per key (user) with optional per-key overrides, so a test can shrink one
    user's budget without waiting for a real window to fill."""

    def __init__(self, limit: int, window_s: float, aligned: bool = False) -> None:
        self.limit, self.window_s, self.aligned = limit, window_s, aligned
        self._default = FixedWindowLimiter(limit, window_s, aligned)
        self._overrides: dict[str, FixedWindowLimiter] = {}

    def set(self, key: str, limit: int | None) -> None:
        """Give ``key`` its own budget (``None`` returns it to the default)."""
        if limit is None:
            self._overrides.pop(key, None)
        else:
            self._overrides[key] = FixedWindowLimiter(limit, self.window_s, self.aligned)

    def hit(self, key: str) -> tuple[bool, int, int, int]:
        """Count a request: (allowed, remaining, seconds to reset, the key's limit)."""
        limiter = self._overrides.get(key, self._default)
        allowed, remaining, reset = limiter.hit(key)
        return allowed, remaining, reset, limiter.limit

    def reset(self) -> None:
        self._default.reset()
        for limiter in self._overrides.values():
            limiter.reset()


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from an ``Authorization: Basic`` header, if there is one."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


def pkce_matches(challenge: str, method: str, verifier: str) -> bool:
    """RFC 7636 check of a ``code_verifier`` against the stored ``code_challenge``."""
    if method == "S256":
        verifier = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return bool(verifier) and verifier == challenge


@dataclass
class SimulatorServer:
    """Serve ``app`` on 127.0.0.1 (``port=0`` picks a free port) from a background thread."""

    app: FastAPI
    port: int = 0
    host: str = field(default="127.0.0.1", init=False)
    _server: uvicorn.Server | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"simulator did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class AuthCode:
    """An authorization code waiting to be exchanged: once, within 10 minutes."""

    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None = None
    method: str = "plain"
    offline: bool = True
    expires: float = field(default_factory=lambda: time.time() + 600)
    used: bool = False


def redirect_back(redirect_uri: str, state: str | None, **params: str) -> RedirectResponse:
    """The consent page's 302 to the client's callback, carrying ``state`` back unchanged."""
    if state is not None:
        params["state"] = state
    sep = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + sep + urlencode(params), status_code=302)


class OAuthSimulatorState(SimulatorState):
    """What both Fitbit simulators' OAuth servers track besides faults and calls: token-endpoint
    calls by grant type, partial consent per user, and per-user rate budgets."""

    def __init__(self, rate_limit: int, window_s: float, aligned: bool = False) -> None:
        super().__init__()
        self.token_calls: Counter[str] = Counter()
        self.codes: dict[str, AuthCode] = {}
        self.granted_scopes: dict[str, tuple[str, ...]] = {}
        self.rate_limits = PerKeyLimits(rate_limit, window_s, aligned)

    def set_granted_scopes(self, user_id: str, scopes: Iterable[str] | None) -> None:
        """Partial consent: the user's next grants carry only these scopes (None = all asked)."""
        if scopes is None:
            self.granted_scopes.pop(user_id, None)
        else:
            self.granted_scopes[user_id] = tuple(scopes)

    def set_rate_limit(self, user_id: str, limit: int | None) -> None:
        """A per-user budget for the simulator's window (None = the default budget)."""
        self.rate_limits.set(user_id, limit)

    def new_code(self, code: AuthCode) -> str:
        key = secrets.token_urlsafe(32)
        self.codes[key] = code
        return key

    def redeem_code(self, form: dict[str, str]) -> tuple[AuthCode | None, str]:
        """Check an authorization_code grant. Returns ``(code, "")`` when good, else ``(None,
        problem)`` with problem ``code`` (unknown, used or expired), ``redirect_uri`` (not the
        one sent to the consent page) or ``code_verifier`` (PKCE mismatch). A code is spent by
        its first exchange, good or bad."""
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or code.expires < time.time():
            return None, "code"
        code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            return None, "redirect_uri"
        if code.challenge and not pkce_matches(code.challenge, code.method, form.get("code_verifier", "")):
            return None, "code_verifier"
        return code, ""

    def consent(self, login_hint: str | None, requested: Sequence[str],
                users: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
        """The auto-approving consent page's decision: which simulated account signs in
        (``login_hint``; implied when there is one user) and which scopes it grants."""
        if login_hint is None and len(users) == 1:
            login_hint = users[0]
        if login_hint is None or login_hint not in users:
            return None, ()
        allowed = self.granted_scopes.get(login_hint, tuple(requested))
        return login_hint, tuple(s for s in requested if s in allowed)


class LoopbackSimulator:
    """Start/stop/context-manager plumbing for a simulator that serves ``self.app``."""

    app: FastAPI
    _server: SimulatorServer

    def start(self) -> Any:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.url


def make_app(title: str, state: SimulatorState) -> FastAPI:
    """A FastAPI app with the fault/log middleware and admin routes already attached."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(FaultAndLogMiddleware, state=state)
    add_admin_routes(app, state)
    return app
