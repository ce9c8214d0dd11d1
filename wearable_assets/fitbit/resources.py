"""Dagster resources for the two Fitbit adapters.

Secrets (client id/secret, the token-encryption key) come from ``dg.EnvVar``. Endpoint URLs are
plain settings resolved at run time: the field if set, else the environment variable the
simulators and the demo set (``WEARABLES_GOOGLE_*``, ``WEARABLES_FITBIT_BASE_URL``), else the
real provider. The resources hand out plain-Python clients (``google_health/helpers.py``, ``legacy/helpers.py``)
so the assets stay thin and the clients are testable without Dagster.
"""

from __future__ import annotations

import hashlib

import dagster as dg

from wearable_assets import settings
from wearable_assets.fitbit import google_health, legacy
from wearable_assets.fitbit.google_health.helpers import GoogleHealthClient
from wearable_assets.fitbit.http import ApiError, ApiSession
from wearable_assets.fitbit.legacy.helpers import FitbitLegacyClient
from wearable_assets.oauth.app import OAuthApp
from wearable_assets.oauth.crypto import TokenCipher
from wearable_assets.oauth.store import TokenStore
from wearable_assets.orchestration.pools import GOOGLE_HEALTH_POOL, POOL_LIMITS
from wearable_assets.rate_limits import SlidingWindowLimiter, shared_limiter
from wearable_assets.settings import (
    FITBIT_BASE_URL_ENV,
    FITBIT_CLIENT_ID_ENV,
    FITBIT_CLIENT_SECRET_ENV,
    GOOGLE_AUTH_URL_ENV,
    GOOGLE_BASE_URL_ENV,
    GOOGLE_CLIENT_ID_ENV,
    GOOGLE_CLIENT_SECRET_ENV,
    GOOGLE_PROJECT_REQUESTS_ENV,
    GOOGLE_PROJECT_WINDOW_ENV,
    GOOGLE_TOKEN_URL_ENV,
    TOKEN_KEY_ENV,
)
from wearable_assets.storage.timescale import Timescale


def _setting(value: str | None, env: str, default: str) -> str:
    return value or settings.text(env, default)


class _ApiResource(dg.ConfigurableResource):
    """What both adapters share: credentials, the token key and the HTTP policy."""

    client_id: str
    client_secret: str
    token_key: str
    timeout_s: float = 30.0
    max_retries: int = 4
    backoff_s: float = 1.0
    #: Longest 429 wait honoured in-process; a later reset fails the participant-day instead.
    max_wait_s: float = 120.0

    def token_store(self, timescale: Timescale) -> TokenStore:
        return TokenStore(timescale, TokenCipher(self.token_key))

    def _limiter(self, provider: str) -> SlidingWindowLimiter:
        raise NotImplementedError

    def _session(self, provider: str, participant_id: str, project: tuple[SlidingWindowLimiter, str] | None = None
                 ) -> ApiSession:
        return ApiSession(
            key=f"{provider}:{participant_id}",
            limiter=self._limiter(provider),
            project_limiter=project[0] if project else None,
            project_key=project[1] if project else "",
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            backoff_s=self.backoff_s,
            max_wait_s=self.max_wait_s,
        )


class GoogleHealthResource(_ApiResource):
    """Google Health API v4 with Google OAuth (authorization code + offline refresh).

    Two client-side budgets hold every request (both process-wide sliding windows): the
    participant's (``requests_per_minute``, Google's 300 per minute per user) and this
    process's share of the project's quota (Google's 120,000 per minute, counted over every
    user of the OAuth client). The share is the quota divided by the ``google_health_api``
    pool's slots, which bound the steps calling the API at once on the instance: all of them
    together stay within the quota. ``project_requests`` / ``project_window_s`` override the
    quota's settings (``WEARABLES_GOOGLE_PROJECT_*``).
    """

    auth_url: str | None = None
    token_url: str | None = None
    base_url: str | None = None
    page_size: int = 10000
    #: Client-side per-participant limit: Google Health allows 300 requests per minute per user.
    requests_per_minute: int = 300
    project_requests: int | None = None
    project_window_s: float | None = None

    def _limiter(self, provider: str) -> SlidingWindowLimiter:
        return shared_limiter(provider, self.requests_per_minute, 60.0)

    def project_budget(self, pool_slots: int | None = None) -> tuple[int, float]:
        """This process's share of the project quota: ``(requests, window_s)``. ``pool_slots``
        is the ``google_health_api`` pool's limit (the step reads it from the instance); without
        it, the limit the project sets (``POOL_LIMITS``)."""
        quota = self.project_requests or settings.integer(GOOGLE_PROJECT_REQUESTS_ENV, 120_000, minimum=1,
                                                          unit="requests")
        window = self.project_window_s or settings.positive_number(GOOGLE_PROJECT_WINDOW_ENV, 60.0, "seconds")
        slots = pool_slots if pool_slots and pool_slots > 0 else POOL_LIMITS[GOOGLE_HEALTH_POOL]
        return max(1, quota // slots), window

    def project_limiter(self, pool_slots: int | None = None) -> tuple[SlidingWindowLimiter, str]:
        """The process-wide limiter of the project's share and the project's key in it (a digest
        of the client id, which identifies the project without being kept in the clear)."""
        budget, window = self.project_budget(pool_slots)
        project = "project:" + hashlib.sha256(self.client_id.encode()).hexdigest()[:16]
        return shared_limiter(f"{google_health.PROVIDER}:project", budget, window), project

    def oauth_app(self) -> OAuthApp:
        return OAuthApp(
            provider=google_health.PROVIDER,
            client_id=self.client_id,
            client_secret=self.client_secret,
            auth_url=_setting(self.auth_url, GOOGLE_AUTH_URL_ENV, google_health.DEFAULT_AUTH_URL),
            token_url=_setting(self.token_url, GOOGLE_TOKEN_URL_ENV, google_health.DEFAULT_TOKEN_URL),
            scopes=google_health.SCOPES,
            timeout_s=self.timeout_s,
            refresh_backoff_s=self.backoff_s,
        )

    def client(self, participant_id: str, timescale: Timescale, *, pool_slots: int | None = None
               ) -> GoogleHealthClient:
        """A client for one participant; ``pool_slots`` as in ``project_budget``."""
        return GoogleHealthClient(
            participant_id=participant_id,
            oauth=self.oauth_app(),
            store=self.token_store(timescale),
            session=self._session(google_health.PROVIDER, participant_id, self.project_limiter(pool_slots)),
            base_url=_setting(self.base_url, GOOGLE_BASE_URL_ENV, google_health.DEFAULT_BASE_URL),
            page_size=self.page_size,
        )


class FitbitLegacyResource(_ApiResource):
    """The legacy Fitbit Web API (turned off 2026-11-02: expect 410) and its OAuth.

    ``base_url`` serves the API and the token endpoint (``/oauth2/token``); the consent page is
    ``www.fitbit.com`` for the real service, or ``<base_url>/oauth2/authorize`` when a base URL
    (the simulator) is configured.
    """

    base_url: str | None = None
    auth_url: str | None = None
    #: Client-side per-participant limit: the legacy budget is 150 calls per user per hour. The
    #: provider's own count (other processes included) is enforced from the Fitbit-Rate-Limit-*
    #: response headers: ApiSession stops before spending the last call of the hour.
    requests_per_hour: int = 150

    def _limiter(self, provider: str) -> SlidingWindowLimiter:
        return shared_limiter(provider, self.requests_per_hour, 3600.0, max_wait_s=self.max_wait_s)

    @property
    def resolved_base_url(self) -> str:
        return _setting(self.base_url, FITBIT_BASE_URL_ENV, legacy.DEFAULT_BASE_URL).rstrip("/")

    def oauth_app(self) -> OAuthApp:
        if not self.client_id or not self.client_secret:
            raise ApiError(
                "FITBIT_CLIENT_ID / FITBIT_CLIENT_SECRET are not set, but a participant uses the legacy "
                "Fitbit adapter: set them, or re-consent the participant via Google Health"
            )
        base = self.resolved_base_url
        configured = self.base_url or settings.optional(FITBIT_BASE_URL_ENV)
        auth_url = self.auth_url or (f"{base}/oauth2/authorize" if configured else legacy.DEFAULT_AUTH_URL)
        return OAuthApp(
            provider=legacy.PROVIDER,
            client_id=self.client_id,
            client_secret=self.client_secret,
            auth_url=auth_url,
            token_url=f"{base}/oauth2/token",
            scopes=legacy.SCOPES,
            basic_auth=True,
            timeout_s=self.timeout_s,
            refresh_backoff_s=self.backoff_s,
        )

    def client(self, participant_id: str, timescale: Timescale) -> FitbitLegacyClient:
        return FitbitLegacyClient(
            participant_id=participant_id,
            oauth=self.oauth_app(),
            store=self.token_store(timescale),
            session=self._session(legacy.PROVIDER, participant_id),
            base_url=self.resolved_base_url,
        )


def google_health_resource() -> GoogleHealthResource:
    return GoogleHealthResource(
        client_id=dg.EnvVar(GOOGLE_CLIENT_ID_ENV),
        client_secret=dg.EnvVar(GOOGLE_CLIENT_SECRET_ENV),
        token_key=dg.EnvVar(TOKEN_KEY_ENV),
    )


def fitbit_legacy_resource() -> FitbitLegacyResource:
    """The legacy adapter is optional: without ``FITBIT_CLIENT_ID`` in the environment when the
    definitions load, it is configured empty and only fails (clearly) if a participant uses it,
    so deployments that never had legacy participants need no legacy credentials."""
    if settings.is_set(FITBIT_CLIENT_ID_ENV):
        return FitbitLegacyResource(
            client_id=dg.EnvVar(FITBIT_CLIENT_ID_ENV),
            client_secret=dg.EnvVar(FITBIT_CLIENT_SECRET_ENV),
            token_key=dg.EnvVar(TOKEN_KEY_ENV),
        )
    return FitbitLegacyResource(client_id="", client_secret="", token_key=dg.EnvVar(TOKEN_KEY_ENV))
