"""An OAuth 2.0 authorization-code client (requests-oauthlib) for one provider.

It does three things: build the consent URL, exchange the returned code, and refresh a token.
Data calls do not go through ``OAuth2Session``: the adapters add the bearer header themselves,
so the token lifecycle stays in ``TokenStore`` (lock + commit-before-use) and not in a library
callback.

Two provider quirks are handled here, before oauthlib parses a token response:
Fitbit's errors are ``{"errors": [{"errorType": "invalid_grant", …}]}`` rather than RFC 6749's
``{"error": "invalid_grant"}`` (oauthlib would report a confusing "missing token"), and the
turned-off legacy endpoints answer 410 Gone.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from wearable_assets.oauth.errors import InvalidGrant, TokenEndpointError, redact

# requests-oauthlib and oauthlib log request bodies, tokens and client secrets at DEBUG.
# Pin them to WARNING so a verbose root logger can never write a secret.
for _name in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_name).setLevel(logging.WARNING)

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class OAuthConfigError(RuntimeError):
    """The provider refused our client (wrong id/secret, redirect URI not registered…)."""


def allow_loopback_http(*urls: str) -> None:
    """oauthlib refuses plain http; allow it only when every endpoint is a loopback simulator."""
    if all(urlsplit(u).scheme == "http" and urlsplit(u).hostname in LOOPBACK_HOSTS for u in urls):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _error_code(response: requests.Response) -> tuple[str, str]:
    """(error code, description) from an RFC 6749 or a Fitbit-shaped error body."""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    if isinstance(body, dict) and "error" in body:
        error = body["error"]
        if isinstance(error, dict):  # google.rpc.Status shape
            return str(error.get("status", "")), str(error.get("message", ""))
        return str(error), str(body.get("error_description", ""))
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("errorType", "")), str(errors[0].get("message", ""))
    return "", ""


@dataclass(frozen=True)
class OAuthApp:
    """A registered OAuth client of one provider.

    ``basic_auth``: send the client credentials as HTTP Basic (Fitbit requires it for server
    apps); otherwise in the form body (Google's usual style).
    """

    provider: str
    client_id: str
    client_secret: str
    auth_url: str
    token_url: str
    scopes: tuple[str, ...]
    basic_auth: bool = False
    timeout_s: float = 30.0
    refresh_attempts: int = 3
    refresh_backoff_s: float = 1.0

    def __post_init__(self) -> None:
        allow_loopback_http(self.auth_url, self.token_url)

    def _check(self, response: requests.Response) -> requests.Response:
        """Compliance hook: turn provider errors into our exceptions before oauthlib parses."""
        status = response.status_code
        if status < 400:
            return response
        code, description = _error_code(response)
        text = redact(f"{code}: {description}" if code else description, self.client_secret)
        if status == 410:
            raise InvalidGrant(f"{self.provider} token endpoint answered 410 Gone", reason="gone_410")
        if status == 429 or status >= 500:
            raise TokenEndpointError(f"{self.provider} token endpoint answered {status} ({text})")
        if code == "invalid_grant":
            raise InvalidGrant(f"{self.provider} token endpoint: {text}")
        if code in ("invalid_client", "unauthorized_client"):
            raise OAuthConfigError(
                f"{self.provider} token endpoint refused the client credentials ({text}): check the client id/secret"
            )
        raise OAuthConfigError(f"{self.provider} token endpoint answered {status} ({text})")

    def session(self, redirect_uri: str | None = None, state: str | None = None) -> OAuth2Session:
        oauth = OAuth2Session(self.client_id, scope=list(self.scopes), redirect_uri=redirect_uri, state=state,
                              pkce="S256")
        oauth.register_compliance_hook("access_token_response", self._check)
        oauth.register_compliance_hook("refresh_token_response", self._check)
        return oauth

    def _auth(self) -> requests.auth.HTTPBasicAuth | None:
        return requests.auth.HTTPBasicAuth(self.client_id, self.client_secret) if self.basic_auth else None

    def authorization_url(self, oauth: OAuth2Session, **params: str) -> tuple[str, str]:
        """(consent URL, state); keep ``oauth`` for ``exchange_code`` (it holds the PKCE verifier)."""
        url, state = oauth.authorization_url(self.auth_url, **params)
        return url, state

    def exchange_code(self, oauth: OAuth2Session, code: str) -> dict[str, Any]:
        # Users may untick scopes; we record what was granted instead of failing on it.
        os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
        try:
            if self.basic_auth:
                return dict(oauth.fetch_token(self.token_url, code=code, auth=self._auth(), timeout=self.timeout_s))
            return dict(
                oauth.fetch_token(self.token_url, code=code, client_secret=self.client_secret,
                                  include_client_id=True, timeout=self.timeout_s)
            )
        except OAuth2Error as exc:
            raise OAuthConfigError(f"{self.provider} code exchange failed: {exc.error}") from None

    def refresh(self, token: dict[str, Any]) -> dict[str, Any]:
        """One refresh, retried on transient token-endpoint failures; ``InvalidGrant`` is final."""
        refresh_token = token.get("refresh_token")
        if not refresh_token:
            raise InvalidGrant(f"{self.provider}: no refresh token stored (consent was not offline)")
        os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
        for attempt in range(self.refresh_attempts):
            oauth = self.session()
            try:
                if self.basic_auth:
                    return dict(oauth.refresh_token(self.token_url, refresh_token=refresh_token, auth=self._auth(),
                                                    timeout=self.timeout_s))
                return dict(oauth.refresh_token(self.token_url, refresh_token=refresh_token, timeout=self.timeout_s,
                                                client_id=self.client_id, client_secret=self.client_secret))
            except (TokenEndpointError, requests.Timeout, requests.ConnectionError) as exc:
                if attempt + 1 >= self.refresh_attempts:
                    raise TokenEndpointError(f"{self.provider} token refresh failed: {exc}") from None
                log.warning("%s token refresh failed (%s); retrying", self.provider, exc.__class__.__name__)
                time.sleep(self.refresh_backoff_s * 2 ** attempt)
            except OAuth2Error as exc:
                raise TokenEndpointError(f"{self.provider} token refresh failed: {exc.error}") from None
        raise AssertionError("unreachable")
