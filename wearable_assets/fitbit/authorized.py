"""What both Fitbit adapters do around every data call: bearer token, one refresh on 401.

The token comes from the ``TokenStore`` (encrypted, lock-protected refresh). A 401 means the
access token was rejected: the store refreshes it once (or hands over the token another worker
just refreshed) and the call is repeated; a second 401 is a re-consent case. What any other
error status means is provider-specific, so each adapter implements ``failure``.
"""

from __future__ import annotations

from typing import Any

import requests

from wearable_assets.fitbit.http import ApiSession
from wearable_assets.oauth.app import OAuthApp
from wearable_assets.oauth.errors import NeedsReconsent
from wearable_assets.oauth.store import TokenStore


class AuthorizedClient:
    """One participant's client for one provider (subclasses set ``provider``)."""

    provider: str

    def __init__(self, *, participant_id: str, oauth: OAuthApp, store: TokenStore, session: ApiSession,
                 base_url: str) -> None:
        self.participant_id = participant_id
        self.oauth = oauth
        self.store = store
        self.session = session
        self.base_url = base_url.rstrip("/")
        self._access_token: str | None = None

    def _token(self, rejected: str | None = None) -> str:
        self._access_token = self.store.access_token(self.participant_id, self.provider, self.oauth.refresh,
                                                     rejected=rejected)
        return self._access_token

    def send(self, method: str, path: str, *, what: str, headers: dict[str, str] | None = None,
             **kwargs: Any) -> bytes:
        """One API call with the participant's token; returns the 2xx body (bytes)."""
        token = self._access_token or self._token()
        for attempt in (1, 2):
            response = self.session.send(method, f"{self.base_url}/{path}", what=what,
                                         headers={"Authorization": f"Bearer {token}", **(headers or {})}, **kwargs)
            if response.status_code < 400:
                return response.content
            if response.status_code == 401 and attempt == 1 and self.refreshable(response):
                token = self._token(rejected=token)  # refresh once, under the store's row lock
                continue
            raise self.failure(response, what)
        raise AssertionError("unreachable")

    def refreshable(self, response: requests.Response) -> bool:
        """Whether a 401 is an expired/invalid access token (worth one refresh)."""
        return True

    def failure(self, response: requests.Response, what: str) -> Exception:
        """The exception for a final error response (re-consent, or ``ApiError``)."""
        raise NotImplementedError

    def reconsent(self, reason: str, detail: str) -> NeedsReconsent:
        """Record that the participant must consent again; returns the exception to raise."""
        return self.store.mark_needs_reconsent(self.participant_id, self.provider, reason, detail)
