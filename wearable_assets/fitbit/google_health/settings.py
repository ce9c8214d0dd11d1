"""Google Health API v4: the provider's name, its endpoints and the scopes the project asks for.

Constants only (no HTTP, no OAuth imports), so the package's ``__init__`` can export them to code
that must stay light (the loaders, the simulators, the doctor). The environment variables that
override the endpoints are declared in ``wearable_assets/settings.py``.
"""

from __future__ import annotations

PROVIDER = "google_health"
DEFAULT_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
DEFAULT_BASE_URL = "https://health.googleapis.com/v4"
SCOPE_PREFIX = "https://www.googleapis.com/auth/googlehealth."
SCOPES = tuple(
    SCOPE_PREFIX + s
    for s in (
        "activity_and_fitness.readonly",
        "health_metrics_and_measurements.readonly",
        "sleep.readonly",
        "settings.readonly",
        "profile.readonly",
    )
)
