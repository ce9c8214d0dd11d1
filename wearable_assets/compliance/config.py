"""Alert thresholds and the notification target, from the environment, in one place.

Every evaluation stores the thresholds it used beside its result (``wearables.compliance_alerts``
and the check's metadata), so a result read months later says which rule produced it.
The webhook URL is a secret (a Slack incoming-webhook URL *is* its credential): it is never
logged, stored or put in metadata; only whether one is configured is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wearable_assets import settings

NON_VALID_DAYS_ENV = settings.ALERT_NON_VALID_DAYS_ENV
NO_SYNC_HOURS_ENV = settings.ALERT_NO_SYNC_HOURS_ENV
STUDY_INVALID_PCT_ENV = settings.ALERT_STUDY_INVALID_PCT_ENV
WEBHOOK_URL_ENV = settings.ALERT_WEBHOOK_URL_ENV
WEBHOOK_RETRIES_ENV = settings.ALERT_WEBHOOK_RETRIES_ENV


@dataclass(frozen=True)
class AlertConfig:
    #: Fire when the last this-many days (up to yesterday) in a row were enrolled and not valid.
    non_valid_days: int = 3
    #: Fire when no device of the participant has synced for this many hours.
    no_sync_hours: float = 48.0
    #: Fire (for every participant of the study) when more than this share of the study's enrolled
    #: participant-days yesterday were not valid.
    study_invalid_pct: float = 50.0
    webhook_url: str | None = None
    webhook_retries: int = 3

    @classmethod
    def from_env(cls) -> AlertConfig:
        return cls(
            non_valid_days=settings.integer(NON_VALID_DAYS_ENV, 3, minimum=1, maximum=92),
            no_sync_hours=settings.number(NO_SYNC_HOURS_ENV, 48.0, minimum=1),
            study_invalid_pct=settings.number(STUDY_INVALID_PCT_ENV, 50.0, minimum=0, maximum=100),
            webhook_url=settings.optional(WEBHOOK_URL_ENV),
            webhook_retries=settings.integer(WEBHOOK_RETRIES_ENV, 3, minimum=0, maximum=10),
        )

    def thresholds(self) -> dict[str, Any]:
        """What a result is stored with (never the webhook URL)."""
        return {"non_valid_days": self.non_valid_days, "no_sync_hours": self.no_sync_hours,
                "study_invalid_pct": self.study_invalid_pct}
