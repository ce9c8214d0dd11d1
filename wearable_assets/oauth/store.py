"""Per-participant OAuth tokens in ``wearables.oauth_tokens``: encrypted, refreshed exactly once.

Why a row lock: Fitbit refresh tokens are single-use, so two workers that refresh the same
participant at once leave one of them holding a dead token (``invalid_grant`` and a participant
wrongly flagged for re-consent). Google tokens are not rotated, but the same lock avoids a
thundering herd. The protocol:

1. read the token without a lock; if it is valid for a while longer, use it;
2. otherwise ``SELECT … FOR UPDATE`` the participant's row, re-read it (another worker may have
   refreshed meanwhile: then use theirs), call the token endpoint, and **commit the new token
   before using it**, so a crash after the refresh cannot lose a single-use refresh token.

``invalid_grant`` (and the data-call failures the clients map to it) flip the row to
``needs_reconsent`` with a reason; the store then refuses to hand out tokens until the
participant is enrolled again, so a revoked grant is not hammered on every run. The same
transaction records the detection in the re-consent ledger, and ``save`` (enrolment) records
the consent there (``compliance/ledger.py``), so the ledger never disagrees with the token row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from wearable_assets.compliance import ledger
from wearable_assets.oauth.crypto import TokenCipher
from wearable_assets.oauth.errors import InvalidGrant, NeedsReconsent
from wearable_assets.storage.timescale import Timescale

#: Refresh when the access token has less than this many seconds left.
REFRESH_MARGIN_S = 120

Refresher = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class AuthStatus:
    participant_id: str
    provider: str
    auth_state: str  # "active" | "needs_reconsent" | "not_enrolled"
    reason: str | None
    expires_at: datetime | None
    refreshed_at: datetime | None


def expires_at_of(token: dict[str, Any], now: float) -> float | None:
    """Absolute expiry (epoch seconds) from ``expires_at`` or, at receipt, ``expires_in``."""
    if token.get("expires_at") is not None:
        return float(token["expires_at"])
    if token.get("expires_in") is not None:
        return now + float(token["expires_in"])
    return None


def normalise(token: dict[str, Any], now: float) -> dict[str, Any]:
    """Keep what a client needs (no ``id_token`` etc.) with an absolute ``expires_at``."""
    kept = ("access_token", "refresh_token", "token_type", "scope", "user_id")
    keep: dict[str, Any] = {k: token[k] for k in kept if k in token}
    expiry = expires_at_of(token, now)
    if expiry is not None:
        keep["expires_at"] = expiry
    return keep


class TokenStore:
    """Encrypted tokens per (participant, provider), with lock-protected refresh."""

    def __init__(self, timescale: Timescale, cipher: TokenCipher, clock: Callable[[], float] = time.time):
        self.timescale = timescale
        self.cipher = cipher
        self.clock = clock

    # --- enrolment and state ----------------------------------------------------------------
    def save(self, participant_id: str, provider: str, token: dict[str, Any]) -> None:
        """Store a freshly granted token (enrolment) and mark the participant ``active``."""
        token = normalise(token, self.clock())
        if not token.get("access_token"):
            raise ValueError("token response has no access_token")
        with self.timescale.connect() as conn:
            conn.execute(
                """INSERT INTO wearables.oauth_tokens AS t
                       (participant_id, provider, token_ciphertext, expires_at, auth_state, reconsent_reason,
                        refreshed_at, updated_at)
                   VALUES (%s, %s, %s, %s, 'active', NULL, now(), now())
                   ON CONFLICT (participant_id, provider) DO UPDATE SET
                       token_ciphertext = EXCLUDED.token_ciphertext, expires_at = EXCLUDED.expires_at,
                       auth_state = 'active', reconsent_reason = NULL, refreshed_at = now(), updated_at = now()""",
                (participant_id, provider, self.cipher.encrypt(token), _ts(token.get("expires_at"))),
            )
            ledger.record_consent(conn, participant_id, provider)
            conn.commit()

    def status(self, participant_id: str, provider: str) -> AuthStatus:
        rows = self.timescale.fetch(
            "SELECT auth_state, reconsent_reason, expires_at, refreshed_at FROM wearables.oauth_tokens "
            "WHERE participant_id = %s AND provider = %s",
            (participant_id, provider),
        )
        if not rows:
            return AuthStatus(participant_id, provider, "not_enrolled", "not_enrolled", None, None)
        state, reason, expires_at, refreshed_at = rows[0]
        return AuthStatus(participant_id, provider, state, reason, expires_at, refreshed_at)

    def mark_needs_reconsent(self, participant_id: str, provider: str, reason: str, detail: str = "") -> NeedsReconsent:
        """Record that the participant must consent again; returns the exception to raise."""
        with self.timescale.connect() as conn:
            conn.execute(
                """INSERT INTO wearables.oauth_tokens AS t (participant_id, provider, auth_state, reconsent_reason)
                   VALUES (%s, %s, 'needs_reconsent', %s)
                   ON CONFLICT (participant_id, provider) DO UPDATE SET
                       auth_state = 'needs_reconsent', reconsent_reason = EXCLUDED.reconsent_reason,
                       updated_at = now()""",
                (participant_id, provider, reason),
            )
            ledger.record_detection(conn, participant_id, provider, reason, detail)
            conn.commit()
        return NeedsReconsent(participant_id, provider, reason, detail)

    def stored_token(self, participant_id: str, provider: str) -> dict[str, Any]:
        """The participant's active token as stored (no refresh).

        Raises ``NeedsReconsent`` when there is none or the participant must consent again, and
        ``TokenKeyError`` when it was encrypted with another key.
        """
        return self._read(participant_id, provider, lock=False)

    # --- tokens for API calls ---------------------------------------------------------------
    def access_token(
        self, participant_id: str, provider: str, refresher: Refresher, *, rejected: str | None = None
    ) -> str:
        """A usable access token for the participant.

        ``rejected`` is the access token an API call just refused with 401: if it is still the
        stored one, refresh it (under the lock); if another worker already replaced it, use theirs.
        """
        token = self._read(participant_id, provider, lock=False)
        if not self._must_refresh(token, rejected):
            return token["access_token"]
        return self._refresh_locked(participant_id, provider, refresher, rejected)

    def _must_refresh(self, token: dict[str, Any], rejected: str | None) -> bool:
        if rejected is not None and token.get("access_token") == rejected:
            return True
        expiry = token.get("expires_at")
        return expiry is not None and float(expiry) - self.clock() < REFRESH_MARGIN_S

    def _refresh_locked(self, participant_id: str, provider: str, refresher: Refresher, rejected: str | None) -> str:
        failure: InvalidGrant | None = None
        with self.timescale.connect() as conn:
            with conn.transaction():
                token = self._read(participant_id, provider, lock=True, conn=conn)
                if not self._must_refresh(token, rejected):
                    return token["access_token"]  # someone else refreshed while we waited
                try:
                    fresh = normalise(refresher(token), self.clock())
                except InvalidGrant as exc:
                    failure = exc
                else:
                    fresh.setdefault("refresh_token", token.get("refresh_token"))  # Google does not rotate
                    conn.execute(
                        """UPDATE wearables.oauth_tokens SET token_ciphertext = %s, expires_at = %s,
                                  refreshed_at = now(), updated_at = now()
                            WHERE participant_id = %s AND provider = %s""",
                        (self.cipher.encrypt(fresh), _ts(fresh.get("expires_at")), participant_id, provider),
                    )
                if failure is not None:
                    conn.execute(
                        """UPDATE wearables.oauth_tokens SET auth_state = 'needs_reconsent',
                                  reconsent_reason = %s, updated_at = now()
                            WHERE participant_id = %s AND provider = %s""",
                        (failure.reason, participant_id, provider),
                    )
                    ledger.record_detection(conn, participant_id, provider, failure.reason, str(failure))
            # Leaving the transaction block committed the new token (or the new state).
        if failure is not None:
            raise NeedsReconsent(participant_id, provider, failure.reason, str(failure)) from None
        return fresh["access_token"]

    def _read(self, participant_id: str, provider: str, *, lock: bool, conn: Any = None) -> dict[str, Any]:
        query = (
            "SELECT token_ciphertext, auth_state, reconsent_reason FROM wearables.oauth_tokens "
            "WHERE participant_id = %s AND provider = %s" + (" FOR UPDATE" if lock else "")
        )
        if conn is None:
            rows = self.timescale.fetch(query, (participant_id, provider))
        else:
            rows = conn.execute(query, (participant_id, provider)).fetchall()
        if not rows:
            raise NeedsReconsent(participant_id, provider, "not_enrolled")
        ciphertext, state, reason = rows[0]
        if state != "active" or ciphertext is None:
            raise NeedsReconsent(participant_id, provider, reason or "not_enrolled")
        return self.cipher.decrypt(ciphertext)


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(float(epoch), tz=timezone.utc)
