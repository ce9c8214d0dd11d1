"""Google Health API v4, the Fitbit provider for new consents (laid out like a dlt verified source).

- ``settings``: the provider name, endpoints and scopes (exported here);
- ``helpers``: the client that fetches one participant-day (HTTP and OAuth);
- ``parse``, ``columnar``: the landed payloads turned into canonical rows (no HTTP).

Importing the package loads only ``settings``, so a loader that parses payloads never holds the
HTTP and OAuth clients in memory.
"""

from wearable_assets.fitbit.google_health.settings import (
    DEFAULT_AUTH_URL,
    DEFAULT_BASE_URL,
    DEFAULT_TOKEN_URL,
    PROVIDER,
    SCOPE_PREFIX,
    SCOPES,
)

__all__ = ["DEFAULT_AUTH_URL", "DEFAULT_BASE_URL", "DEFAULT_TOKEN_URL", "PROVIDER", "SCOPES", "SCOPE_PREFIX"]
