"""Dagster objects of the compliance domain: the daily alert asset, its job and schedule."""

import dagster as dg

from wearable_assets.compliance.assets import alerts_job, compliance_alerts, daily_compliance_alerts

defs = dg.Definitions(assets=[compliance_alerts], jobs=[alerts_job], schedules=[daily_compliance_alerts])
