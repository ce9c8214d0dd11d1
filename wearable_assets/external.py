"""What the pipeline reads but does not make, as external assets, and who owns the assets.

The lineage graph then starts where the data does: the Google Health API (and the legacy Fitbit
Web API), ActiGraph CentrePoint, and the roster a study coordinator edits. These are
``AssetSpec``s only: Dagster shows them, never materialises them (the source assets fetch from
them), so they carry no partitions and no compute.
"""

from __future__ import annotations

import dagster as dg

#: The team that answers for every asset of this project (Dagster shows it on each asset).
OWNERS = ["team:study-data-engineering"]
GROUP = "external"

GOOGLE_HEALTH_API = dg.AssetSpec(
    key=["external", "google_health_api"], group_name=GROUP, owners=OWNERS, kinds={"api"},
    description="Google Health API v4: each participant's Fitbit data, under their own OAuth grant "
    "(per-user tokens, 300 requests a minute per user).",
)
FITBIT_WEB_API = dg.AssetSpec(
    key=["external", "fitbit_web_api"], group_name=GROUP, owners=OWNERS, kinds={"api"},
    description="The legacy Fitbit Web API, switched off in November 2026: it answers 410 and its "
    "participants must consent again through Google Health.",
)
CENTREPOINT_API = dg.AssetSpec(
    key=["external", "centrepoint_api"], group_name=GROUP, owners=OWNERS, kinds={"api"},
    description="ActiGraph CentrePoint daily statistics per study subject (OAuth2 client credentials).",
)
ROSTER = dg.AssetSpec(
    key=["external", "roster"], group_name=GROUP, owners=OWNERS, kinds={"csv"},
    description="The study roster (a CSV kept by the coordinators): participants, time zones, enrolment "
    "windows and device accounts, mirrored into wearables.participants and the participant partitions.",
)
ALL = [GOOGLE_HEALTH_API, FITBIT_WEB_API, CENTREPOINT_API, ROSTER]
