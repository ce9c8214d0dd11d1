"""Legacy Fitbit Web API: the provider's name, its endpoints, scopes and the activity resources fetched.

Constants only (no HTTP, no OAuth imports), exported by the package's ``__init__``. The
environment variable that overrides the endpoint is declared in ``wearable_assets/settings.py``.
"""

from __future__ import annotations

PROVIDER = "fitbit_legacy"
DEFAULT_BASE_URL = "https://api.fitbit.com"
DEFAULT_AUTH_URL = "https://www.fitbit.com/oauth2/authorize"
SCOPES = ("activity", "heartrate", "sleep", "oxygen_saturation", "respiratory_rate", "profile", "settings")
ACTIVITY_RESOURCES = ("steps", "calories", "distance", "floors")
