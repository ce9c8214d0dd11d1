"""The auth outcomes a pipeline must react to, and a scrubber for provider error text.

``NeedsReconsent`` is not a crash: it means "a person has to act" (the participant re-consents),
so callers record it per participant-day and carry on with everyone else.
"""

from __future__ import annotations

import re

#: Why a participant's grant stopped working; stored in ``oauth_tokens.reconsent_reason``.
REASONS = {
    "not_enrolled": "no OAuth tokens are stored for this participant",
    "invalid_grant": "the refresh token was rejected (expired, revoked or already used)",
    "second_401": "the API rejected a freshly refreshed access token",
    "account_not_linked": "the Google Account has no Google Health / Fitbit profile (ACCOUNT_NOT_LINKED)",
    "forbidden_403": "the API refused access (403: scopes withdrawn, or a legacy Fitbit login consented)",
    "gone_410": "the legacy Fitbit Web API answered 410 Gone (turned off on 2026-11-02)",
}

# Anything that looks like a bearer/refresh token or an authorization code: long runs of
# token characters. Provider messages sometimes echo the token back ("Refresh token invalid: …").
_TOKENISH = re.compile(r"[A-Za-z0-9._~+/=-]{20,}")


def redact(text: str, *secrets: str | None) -> str:
    """Remove known secrets and token-like strings from provider text before it is stored/logged."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _TOKENISH.sub("[redacted]", text)[:500]


class InvalidGrant(Exception):
    """The token endpoint refused the refresh token for good; ``reason`` is one of ``REASONS``."""

    def __init__(self, message: str, reason: str = "invalid_grant") -> None:
        super().__init__(message)
        self.reason = reason


class TokenEndpointError(Exception):
    """The token endpoint failed in a way that may pass (5xx, timeout): retry later, do not re-consent."""


class NeedsReconsent(Exception):
    """The participant must go through consent again before data can be fetched."""

    def __init__(self, participant_id: str, provider: str, reason: str, detail: str = "") -> None:
        self.participant_id = participant_id
        self.provider = provider
        self.reason = reason
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        what = REASONS.get(self.reason, self.reason)
        text = f"participant {self.participant_id} needs re-consent ({self.provider}, {self.reason}): {what}"
        if self.detail:
            text += f". {self.detail}"
        return text + f". Fix: {reconsent_instruction(self.participant_id, self.provider, self.reason)}"


def reconsent_instruction(participant_id: str, provider: str, reason: str) -> str:
    """What the operator does next (the same text in logs, metadata and ingest_status)."""
    if provider == "fitbit_legacy" or reason == "gone_410":
        return (
            f"re-consent {participant_id} via Google Health: `wearable-assets enroll --participant "
            f"{participant_id} --provider google_health`, then set fitbit_provider=google_health in the roster"
        )
    if reason == "account_not_linked":
        return (
            f"ask {participant_id} to set up Google Health / the Fitbit app with this Google Account, then "
            f"`wearable-assets enroll --participant {participant_id} --provider google_health`"
        )
    return f"`wearable-assets enroll --participant {participant_id} --provider {provider}`"
