"""Google's side of OAuth 2.0 in the simulator: the tokens it minted, the per-user account
switches tests flip, and the consent, token and revoke endpoints.

``GoogleHealthState`` holds what the real service would remember (grants, tokens) next to the
fault and rate-limit switches of ``OAuthSimulatorState``. ``GoogleOAuthEndpoints`` is mixed into
``GoogleHealthSimulator`` (which owns the state, the cohort and the client credentials), so the
endpoints answer as methods of the simulator, as they did when they were written inside it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

from wearable_assets_dev.simulators.cohort import SimUser, SyntheticCohort
from wearable_assets_dev.simulators.common import (
    AuthCode,
    OAuthSimulatorState,
    OrjsonResponse,
    SlidingWindowLimit,
    basic_credentials,
    form_fields,
    redirect_back,
)
from wearable_assets_dev.simulators.google_health.vocabulary import ACCESS_TOKEN_LIFETIME_S, READ_SCOPES, ApiError


@dataclass
class _Token:
    user_id: str
    scopes: tuple[str, ...]
    expires: float
    refresh_token: str | None = None


def project_subject(client_id: str) -> str:
    """``project:<number>``: the Cloud project an OAuth client belongs to, as Google names it in a
    ``QuotaFailure`` (a number fixed by the client id: the simulator has no console)."""
    return f"project:{int(hashlib.sha256(client_id.encode()).hexdigest()[:10], 16) % 10**12}"


class GoogleHealthState(OAuthSimulatorState):
    """Faults, call log, token calls, partial consent and rate budgets (``OAuthSimulatorState``)
    plus Google's tokens, the per-user account switches and the per-project quota.

    ``project_quota`` counts every data call of every user of a project (sliding window, default
    120,000 per 60 s as Google documents); its ``log`` holds every decision for tests to count.
    """

    def __init__(self, rate_limit_per_minute: int = 300, project_quota: int = 120_000,
                 project_window_s: float = 60.0) -> None:
        super().__init__(rate_limit_per_minute, 60)
        self.project_quota = SlidingWindowLimit(project_quota, project_window_s)
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

    def set_project_quota(self, limit: int | None = None, window_s: float | None = None) -> None:
        """The project's budget from now on (either part left out stays as it is)."""
        self.project_quota.set(limit, window_s)


class GoogleOAuthEndpoints:
    """The consent page, ``/token`` and ``/revoke`` (registered by ``GoogleHealthSimulator``), and
    ``_authorize``: the checks every data call passes first (bearer token, the project's quota,
    the user's rate budget, account switches, scope), answered as the real service does. Every
    token is issued to the simulator's one OAuth client (``client_id``), so its project's quota
    is the one a call counts against."""

    state: GoogleHealthState
    cohort: SyntheticCohort
    client_id: str
    client_secret: str

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
        project = project_subject(self.client_id)
        allowed, retry_after = self.state.project_quota.hit(project)
        if not allowed:  # the body Google documents for a project's quota (docs/simulators.md)
            raise ApiError(
                429, "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service "
                f"'health.googleapis.com' for consumer 'project_number:{project.removeprefix('project:')}'.",
                details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                          "domain": "googleapis.com"},
                         {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                          "violations": [{"subject": project, "description": "Quota exceeded"}]}],
                headers={"Retry-After": str(retry_after)},
            )
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
