"""The Dagster resource for CentrePoint: a thin handle on the dlt source.

Settings left unset here are resolved by dlt (environment, ``.dlt/config.toml``; see
``source.py``), so the definitions need no secrets to load and the client id/secret are read
from the environment at run time only, never stored in Dagster config, logs or metadata.
The fields exist so a test or a deployment can override a setting without touching dlt config.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import dagster as dg

from wearable_assets.actigraph.source import Fetch, fetch_daily_statistics


class CentrePointResource(dg.ConfigurableResource):
    """ActiGraph CentrePoint API access (DailyStatistics)."""

    base_url: str | None = None
    token_url: str | None = None
    scope: str | None = None
    page_limit: int | None = None
    token_refresh_margin_s: int | None = None
    request_max_attempts: int | None = None
    request_backoff_factor: float | None = None

    def source_options(self) -> dict[str, Any]:
        """The overrides that are set, as ``centrepoint_source`` arguments."""
        options = {
            "centrepoint_base_url": self.base_url,
            "centrepoint_token_url": self.token_url,
            "scope": self.scope,
            "page_limit": self.page_limit,
            "token_refresh_margin_s": self.token_refresh_margin_s,
            "request_max_attempts": self.request_max_attempts,
            "request_backoff_factor": self.request_backoff_factor,
        }
        # dlt treats an explicit None as "no value", so unset fields must be left out.
        return {name: value for name, value in options.items() if value is not None}

    def fetch_daily_statistics(self, study_id: int, subject_id: int, from_date: date, to_date: date) -> Fetch:
        return fetch_daily_statistics(study_id, subject_id, from_date, to_date, **self.source_options())
