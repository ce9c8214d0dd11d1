"""Dagster objects of the Fitbit domain (Google Health v4 + legacy Fitbit Web API).

Scheduling lives in ``wearable_assets/orchestration`` (one daily job for every device's
participant-days, with a trailing re-pull window), not here.
"""

import dagster as dg

from wearable_assets.fitbit.assets import intraday, intraday_parquet, raw_payloads
from wearable_assets.fitbit.checks import participants_need_reconsent
from wearable_assets.fitbit.resources import fitbit_legacy_resource, google_health_resource
from wearable_assets.lake_checks import FITBIT_LAKE_CHECK

defs = dg.Definitions(
    assets=[raw_payloads, intraday, intraday_parquet],
    asset_checks=[participants_need_reconsent, FITBIT_LAKE_CHECK],
    resources={"google_health": google_health_resource(), "fitbit_legacy": fitbit_legacy_resource()},
)
