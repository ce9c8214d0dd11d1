"""The re-consent ledger: where each participant stands on the way back to a working grant.

Why a ledger and not just ``oauth_tokens.auth_state``: the token row says *that* a grant is dead;
a study coordinator chasing 40 participants through the Google Health migration needs to know
who was invited, who consented, whose history was backfilled and who is verified, since when,
and why each of them had to start over (``wearables.reconsent_ledger`` holds the current state,
``wearables.reconsent_transitions`` every step; sql/010_compliance.sql).

Who writes it:

* the token store (``oauth/store.py``) records a detection in the same transaction that flips the
  token to ``needs_reconsent`` (410 from the legacy API, ``invalid_grant``, ACCOUNT_NOT_LINKED, a
  legacy login's 403, a second 401);
* enrolment (``TokenStore.save``, run by ``wearable-assets enroll``) moves it to ``consented``;
* ``wearable-assets reconsent advance`` records the steps that happen outside the pipeline
  (invitation sent, history backfilled, data verified).

States only move forward within an episode; a new detection starts a new episode from its first
state, whatever the ledger said before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

#: The states of an episode, in order. A legacy Fitbit grant starts at ``legacy_fitbit_token``
#: (the participant must be invited to Google Health); a Google grant that died starts at
#: ``needs_reconsent`` (the same account consents again).
STATES = (
    "needs_reconsent",
    "legacy_fitbit_token",
    "invited_to_google_health",
    "consented",
    "history_backfilled",
    "verified",
)
_ORDER = {state: i for i, state in enumerate(STATES)}

#: Why an episode started (ledger reasons; the token store's own reasons are in oauth/errors.py).
DETECTION_REASONS = {
    "http_410": "the legacy Fitbit Web API answered 410 Gone (turned off on 2026-11-02)",
    "invalid_grant": "the refresh token was rejected (revoked, expired after 6 months unused, or time-limited access ended)",
    "testing_mode_7_day_token": "invalid_grant within 7 days of consent: the OAuth app is in Testing publishing "
                                "status, whose refresh tokens die after 7 days",
    "ACCOUNT_NOT_LINKED": "the Google Account has no Google Health profile",
    "legacy_403": "403: consent was given with a legacy Fitbit login, or scopes were withdrawn",
    "forbidden_403": "403: the API refused access (scopes withdrawn)",
    "second_401": "the API rejected a freshly refreshed access token",
    "not_enrolled": "no OAuth tokens are stored for this participant",
}
#: Testing-mode refresh tokens live 7 days; an ``invalid_grant`` this soon after consent is that.
TESTING_MODE_WINDOW = timedelta(days=7, hours=12)


class LedgerError(ValueError):
    """A step the ledger refuses (unknown state, backwards move, no episode): nothing was written."""


@dataclass(frozen=True)
class LedgerEntry:
    participant_id: str
    provider: str
    state: str
    reason: str
    since: datetime


def ledger_reason(provider: str, store_reason: str, detail: str = "") -> str:
    """The ledger's reason for a token-store reason (``oauth/errors.REASONS``)."""
    if store_reason == "gone_410":
        return "http_410"
    if store_reason == "account_not_linked":
        return "ACCOUNT_NOT_LINKED"
    if store_reason == "forbidden_403":
        legacy_login = provider == "fitbit_legacy" or "UberMint" in detail or "GaiaMint" in detail
        return "legacy_403" if legacy_login else "forbidden_403"
    return store_reason


def first_state(provider: str, reason: str) -> str:
    """Where an episode starts: legacy grants (and legacy logins) must move to Google Health."""
    if provider == "fitbit_legacy" or reason in ("http_410", "legacy_403"):
        return "legacy_fitbit_token"
    return "needs_reconsent"


def _current(conn: psycopg.Connection, participant_id: str, provider: str) -> tuple[str, str] | None:
    row = conn.execute(
        "SELECT state, reason FROM wearables.reconsent_ledger WHERE participant_id = %s AND provider = %s FOR UPDATE",
        (participant_id, provider),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _write(conn: psycopg.Connection, participant_id: str, provider: str, before: str | None, state: str,
           reason: str, detail: str | None, *, new_episode: bool) -> None:
    conn.execute(
        """INSERT INTO wearables.reconsent_ledger AS l (participant_id, provider, state, reason, since, opened_at)
           VALUES (%(p)s, %(v)s, %(s)s, %(r)s, clock_timestamp(), clock_timestamp())
           ON CONFLICT (participant_id, provider) DO UPDATE SET
               state = EXCLUDED.state, reason = EXCLUDED.reason, since = EXCLUDED.since,
               opened_at = CASE WHEN %(new)s THEN EXCLUDED.opened_at ELSE l.opened_at END""",
        {"p": participant_id, "v": provider, "s": state, "r": reason, "new": new_episode},
    )
    conn.execute(
        "INSERT INTO wearables.reconsent_transitions (participant_id, provider, from_state, to_state, reason, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (participant_id, provider, before, state, reason, (detail or None) and detail[:500]),
    )


def _consented_recently(conn: psycopg.Connection, participant_id: str, provider: str) -> bool:
    row = conn.execute(
        "SELECT max(at) >= clock_timestamp() - %s FROM wearables.reconsent_transitions "
        "WHERE participant_id = %s AND provider = %s AND to_state = 'consented'",
        (TESTING_MODE_WINDOW, participant_id, provider),
    ).fetchone()
    return bool(row and row[0])


def record_detection(conn: psycopg.Connection, participant_id: str, provider: str, store_reason: str,
                     detail: str = "") -> str:
    """Start (or keep) a re-consent episode; returns the ledger reason. Runs in the caller's transaction.

    Idempotent: the same detection while its episode has not moved on adds no transition, so a
    participant whose every run fails the same way keeps one entry, dated when it began.
    """
    reason = ledger_reason(provider, store_reason, detail)
    if reason == "invalid_grant" and _consented_recently(conn, participant_id, provider):
        reason = "testing_mode_7_day_token"
    state = first_state(provider, reason)
    current = _current(conn, participant_id, provider)
    if current == (state, reason):
        return reason
    # Same first state with another reason (e.g. the legacy grant found at migration now answers
    # 410): the episode goes on, with the newer reason; anything else starts a new one.
    _write(conn, participant_id, provider, current[0] if current else None, state, reason, detail,
           new_episode=current is None or current[0] != state)
    return reason


def record_consent(conn: psycopg.Connection, participant_id: str, provider: str, reason: str = "enrolled") -> None:
    """Enrolment stored a fresh grant: ``consented``. Runs in the caller's transaction.

    A Google Health consent also closes the step for the participant's legacy Fitbit episode
    (the migration's way out of ``legacy_fitbit_token``). A first enrolment with no episode
    is recorded too, so the 7-day testing-mode rule can see when consent was given.
    """
    providers = [provider] + (["fitbit_legacy"] if provider == "google_health" else [])
    for which in providers:
        current = _current(conn, participant_id, which)
        if which != provider and (current is None or _ORDER[current[0]] >= _ORDER["consented"]):
            continue  # no open legacy episode to close
        why = reason if which == provider else "google_health_consent"
        _write(conn, participant_id, which, current[0] if current else None, "consented", why, None,
               new_episode=current is None)


def advance(conn: psycopg.Connection, participant_id: str, provider: str, to_state: str, reason: str,
            detail: str = "") -> LedgerEntry:
    """Record a step taken outside the pipeline (invitation, backfill, verification); forward only."""
    if to_state not in _ORDER:
        raise LedgerError(f"unknown ledger state {to_state!r}; one of {', '.join(STATES)}")
    if not reason.strip():
        raise LedgerError("a ledger step needs a reason (what happened, e.g. 'email sent 2026-11-20')")
    with conn.transaction():
        current = _current(conn, participant_id, provider)
        if current is None:
            raise LedgerError(f"{participant_id} has no re-consent episode for {provider}; nothing to advance")
        if _ORDER[to_state] <= _ORDER[current[0]]:
            raise LedgerError(f"{participant_id} ({provider}) is at {current[0]}; the ledger only moves forward "
                              f"(asked for {to_state})")
        _write(conn, participant_id, provider, current[0], to_state, reason.strip(), detail, new_episode=False)
    row = conn.execute("SELECT since FROM wearables.reconsent_ledger WHERE participant_id = %s AND provider = %s",
                       (participant_id, provider)).fetchone()
    assert row is not None
    return LedgerEntry(participant_id, provider, to_state, reason.strip(), row[0])


LEDGER = """
SELECT l.participant_id, p.study_id, l.provider, l.state, l.reason, l.since, l.opened_at,
       coalesce((SELECT json_agg(json_build_object('from_state', t.from_state, 'to_state', t.to_state,
                                                   'reason', t.reason, 'detail', t.detail, 'at', t.at)
                                 ORDER BY t.at, t.transition_id)
                   FROM wearables.reconsent_transitions t
                  WHERE t.participant_id = l.participant_id AND t.provider = l.provider), '[]'::json) AS transitions
  FROM wearables.reconsent_ledger l
  JOIN wearables.participants p USING (participant_id)
 WHERE (%(study_id)s::text IS NULL OR p.study_id = %(study_id)s)
   AND (%(participant_id)s::text IS NULL OR l.participant_id = %(participant_id)s)
 ORDER BY l.participant_id, l.provider"""


def ledger_rows(conn: psycopg.Connection, study_id: str | None = None,
                participant_id: str | None = None) -> list[dict[str, Any]]:
    """Every ledger entry (optionally of one study or participant) with its transitions, oldest first."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(LEDGER, {"study_id": study_id, "participant_id": participant_id}).fetchall()
