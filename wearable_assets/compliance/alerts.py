"""Daily compliance alert rules, their stored results, and the webhook notification.

Rules, evaluated per participant on day D (``evaluated_on``; "yesterday" is D - 1) from the same
state derivation the dashboard shows (``queries.CELLS``):

* ``consecutive_non_valid_days``: the enrolled days up to yesterday were not valid this many days
  in a row (a day outside enrolment or without any device ends the run);
* ``no_recent_sync``: no device of the participant synced for more than N hours (or ever);
* ``needs_reconsent``: the participant's token needs re-consent (value: days since);
* ``study_invalid_yesterday``: more than X % of the study's enrolled participant-days yesterday
  were not valid. A study-level fact: stored and shown with each of its participants, notified
  once per study, but not held against a participant's own check.

Results are replaced per (day, participant, rule), so re-running a day is idempotent. The
notification carries participant ids and counts only: no names, no values, no reasons.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
import requests
from psycopg.rows import dict_row
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from wearable_assets.compliance import queries
from wearable_assets.compliance.config import AlertConfig
from wearable_assets.compliance.states import NOT_VALID

log = logging.getLogger(__name__)

PARTICIPANT_RULES = ("consecutive_non_valid_days", "no_recent_sync", "needs_reconsent")
STUDY_RULE = "study_invalid_yesterday"
RULES = PARTICIPANT_RULES + (STUDY_RULE,)


@dataclass(frozen=True)
class RuleResult:
    rule: str
    fired: bool
    value: float | None
    threshold: float | None
    detail: str


@dataclass
class ParticipantAlerts:
    participant_id: str
    study_id: str
    evaluated_on: date
    results: list[RuleResult] = field(default_factory=list)

    @property
    def fired(self) -> list[str]:
        """The participant's own rules that fired (the study rule is not theirs)."""
        return [r.rule for r in self.results if r.fired and r.rule in PARTICIPANT_RULES]

    def metadata(self, config: AlertConfig) -> dict[str, Any]:
        out: dict[str, Any] = {"evaluated_on": self.evaluated_on.isoformat(), "study_id": self.study_id,
                               "fired": ", ".join(self.fired) or "none"}
        for r in self.results:
            out[r.rule] = r.value if r.value is not None else "never"
            if r.fired:
                out[f"{r.rule}_detail"] = r.detail
        out.update({f"threshold_{k}": v for k, v in config.thresholds().items()})
        return out


def _run_length(states: list[str]) -> int:
    """Not-valid enrolled days in a row at the end of ``states`` (oldest first)."""
    n = 0
    for state in reversed(states):
        if state not in NOT_VALID:
            break
        n += 1
    return n


def evaluate(conn: psycopg.Connection, participant_ids: list[str], evaluated_on: date, now: datetime,
             config: AlertConfig) -> list[ParticipantAlerts]:
    """Every rule for each participant in the roster among ``participant_ids``."""
    yesterday = evaluated_on - timedelta(days=1)
    lookback = evaluated_on - timedelta(days=max(config.non_valid_days, 7))
    with conn.cursor(row_factory=dict_row) as cur:
        people = cur.execute(queries.PEOPLE_PAGE, {"study_id": None, "participant_ids": participant_ids,
                                                    "limit": len(participant_ids) or 1, "offset": 0}).fetchall()
    states: dict[str, list[str]] = defaultdict(list)
    for cell in queries.cells(conn, lookback, yesterday, participant_ids=participant_ids):
        states[cell["participant_id"]].append(cell["state"])
    # The study rule looks at every participant of the studies involved, not only this run's.
    study_days: dict[str, list[str]] = defaultdict(list)
    for study in sorted({p["study_id"] for p in people}):
        for cell in queries.cells(conn, yesterday, yesterday, study_id=study):
            if cell["state"] not in ("outside_enrolment", "no_device"):
                study_days[study].append(cell["state"])

    out = []
    for p in people:
        alerts = ParticipantAlerts(p["participant_id"], p["study_id"], evaluated_on)
        run = _run_length(states[p["participant_id"]])
        alerts.results.append(RuleResult(
            "consecutive_non_valid_days", run >= config.non_valid_days, run, config.non_valid_days,
            f"{run} enrolled day(s) in a row up to {yesterday} without a valid day"))
        has_device = bool(p["fitbit_provider"]) or bool(p["has_actigraph"])
        enrolled = p["enrolled_from"] <= yesterday and (p["enrolled_to"] is None or p["enrolled_to"] >= yesterday)
        last_sync = p["last_sync"]
        hours = None if last_sync is None else round((now - last_sync).total_seconds() / 3600, 1)
        silent = has_device and enrolled and (hours is None or hours > config.no_sync_hours)
        alerts.results.append(RuleResult(
            "no_recent_sync", silent, hours, config.no_sync_hours,
            "no device sync known" if hours is None else f"last device sync {hours:g} h ago"))
        dead = p["auth_state"] == "needs_reconsent"
        since = p["auth_state_since"]
        days = round((now - since).total_seconds() / 86400, 1) if dead and since is not None else None
        alerts.results.append(RuleResult(
            "needs_reconsent", dead, days, None,
            f"token needs re-consent ({p['reconsent_reason']}) for {days} day(s)" if dead else "token usable"))
        day_states = study_days.get(p["study_id"], [])
        invalid = sum(1 for s in day_states if s != "valid")
        pct = round(100.0 * invalid / len(day_states), 1) if day_states else None
        alerts.results.append(RuleResult(
            STUDY_RULE, pct is not None and pct > config.study_invalid_pct, pct, config.study_invalid_pct,
            f"{invalid} of {len(day_states)} enrolled participant-days of {p['study_id']} not valid on {yesterday}"))
        out.append(alerts)
    return out


STORE = """
INSERT INTO wearables.compliance_alerts (evaluated_on, participant_id, study_id, rule, fired, value, threshold, detail,
                                         evaluated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (evaluated_on, participant_id, rule) DO UPDATE SET
    study_id = EXCLUDED.study_id, fired = EXCLUDED.fired, value = EXCLUDED.value, threshold = EXCLUDED.threshold,
    detail = EXCLUDED.detail, evaluated_at = EXCLUDED.evaluated_at"""


def store(conn: psycopg.Connection, evaluations: list[ParticipantAlerts]) -> None:
    """Replace the day's results of these participants, in one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(STORE, [(a.evaluated_on, a.participant_id, a.study_id, r.rule, r.fired, r.value, r.threshold,
                                 r.detail) for a in evaluations for r in a.results])


def message(evaluations: list[ParticipantAlerts], config: AlertConfig) -> dict[str, Any] | None:
    """A Slack-compatible body (``{"text": ...}``) naming participant ids and counts only; None when
    nothing fired."""
    if not evaluations:
        return None
    day = evaluations[0].evaluated_on
    lines = []
    labels = {
        "consecutive_non_valid_days": f">= {config.non_valid_days} non-valid days in a row",
        "no_recent_sync": f"no device sync for > {config.no_sync_hours:g} h",
        "needs_reconsent": "token needs re-consent",
    }
    for rule in PARTICIPANT_RULES:
        ids = sorted(a.participant_id for a in evaluations if rule in a.fired)
        if ids:
            lines.append(f"• {labels[rule]}: {len(ids)} ({', '.join(ids)})")
    studies: dict[str, RuleResult] = {}
    for a in evaluations:
        for r in a.results:
            if r.rule == STUDY_RULE and r.fired:
                studies[a.study_id] = r
    for study, r in sorted(studies.items()):
        lines.append(f"• study {study}: {r.value:g}% of enrolled participant-days not valid yesterday "
                     f"(> {config.study_invalid_pct:g}%)")
    if not lines:
        return None
    flagged = len({a.participant_id for a in evaluations if a.fired})
    text = (f"wearable_assets compliance alerts for {day}: {flagged} of {len(evaluations)} participant(s) flagged\n"
            + "\n".join(lines))
    return {"text": text}


@dataclass(frozen=True)
class Delivery:
    sent: bool
    attempts: int
    status: int | None
    detail: str


def notify(body: dict[str, Any], config: AlertConfig, *, backoff_s: float = 0.5, timeout_s: float = 10.0) -> Delivery:
    """POST ``body`` to the configured webhook, retrying 429/5xx and connection errors.

    ``Retry-After`` on a 429 or 503 is honoured (urllib3's ``Retry``). The URL is never logged: it
    is the webhook's credential.
    """
    if not config.webhook_url:
        return Delivery(False, 0, None, "no webhook configured")
    retry = Retry(total=config.webhook_retries, connect=config.webhook_retries, read=config.webhook_retries,
                  status=config.webhook_retries, backoff_factor=backoff_s, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset({"POST"}), respect_retry_after_header=True, raise_on_status=False)
    with requests.Session() as session:
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            response = session.post(config.webhook_url, json=body, timeout=timeout_s)
        except requests.RequestException as exc:
            log.error("compliance alert webhook unreachable after %d retries: %s", config.webhook_retries,
                      type(exc).__name__)
            return Delivery(False, config.webhook_retries + 1, None, f"unreachable ({type(exc).__name__})")
    tries = len(response.raw.retries.history) + 1 if response.raw is not None and response.raw.retries else 1
    if response.ok:
        return Delivery(True, tries, response.status_code, "delivered")
    log.error("compliance alert webhook answered HTTP %d after %d attempt(s)", response.status_code, tries)
    return Delivery(False, tries, response.status_code, f"HTTP {response.status_code}")
