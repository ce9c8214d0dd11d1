"""The legacy Fitbit Web API (archived data only; laid out like a dlt verified source).

- ``settings``: the provider name, endpoints, scopes (exported here);
- ``helpers``: the client that fetches one participant-day (HTTP and OAuth);
- ``parse``: the landed payloads turned into canonical rows (no HTTP).

Importing the package loads only ``settings``.
"""

from wearable_assets.fitbit.legacy.settings import (
    ACTIVITY_RESOURCES,
    DEFAULT_AUTH_URL,
    DEFAULT_BASE_URL,
    PROVIDER,
    SCOPES,
)

__all__ = ["ACTIVITY_RESOURCES", "DEFAULT_AUTH_URL", "DEFAULT_BASE_URL", "PROVIDER", "SCOPES"]
