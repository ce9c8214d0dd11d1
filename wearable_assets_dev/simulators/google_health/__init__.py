"""Loopback simulator of the Google Health API v4 and the Google OAuth 2.0 endpoints it needs.

One server answers three roots, so a client configured with ``auth_url``, ``token_url`` and
``base_url`` talks to it exactly as to the real hosts:

* ``{url}/o/oauth2/v2/auth``: the consent page. It approves at once and redirects to
  ``redirect_uri`` with ``code`` and ``state``; the simulated account is chosen by ``login_hint``.
* ``{url}/token`` (+ ``/revoke``): authorization_code (refresh token only with
  ``access_type=offline``) and refresh_token grants; dead grants answer 400 ``invalid_grant``.
* ``{url}/v4``: ``users/me/dataTypes/{type}/dataPoints`` list, ``:reconcile``, ``:rollUp``,
  ``:dailyRollUp``, plus identity, profile, settings and paired devices.

Served behaviour follows the v4 discovery document: newest-first points, int64 values as
strings, physical + civil time with UTC offsets, ``dataSource`` provenance, AIP-160 filters on
physical or civil time, ``nextPageToken`` pages that are often SHORTER than ``pageSize`` (and,
when asked, empty pages that still carry a token), ``google.rpc.Status`` error bodies, a
per-user budget of 300 requests/minute and a per-project quota of 120,000 per minute (a sliding
window over every user of the OAuth client) answered with 429 ``RESOURCE_EXHAUSTED`` +
``Retry-After``. Empty repeated
fields are omitted as in proto3 JSON, so a day without data is ``{}``. Sleep that has synced
less than ``SLEEP_PROCESSING`` ago is served ``processed: false`` without stages; naps the cohort
was given (``SyntheticCohort.add_nap``) are served ``stagesStatus: REJECTED_NAP`` without stages.

Offsets, civil times, civil filters, ``dailyRollUp`` days and daily values' ``date`` follow the
DEVICE's zone at each instant (``cohort.device_offsets``), which ``SimUser.travel`` can move
away from the user's home zone: physical filters and ``rollUp`` are what stay put.

The package is split by concern; the names below are importable from here, as before the split:

* ``vocabulary``: scopes, paging limits, ``DataType`` / ``DATA_TYPES``, ``ApiError`` replies;
* ``rendering``: the v4 JSON of timestamps, civil times, intervals, data sources (and templates);
* ``filters``: the AIP-160 filter parser and the UTC span a filter can match;
* ``points``: point generation from the cohort's synced days (``build_points``, ``PointSet``);
* ``rollups``: ``:rollUp`` / ``:dailyRollUp`` values and pages;
* ``oauth``: tokens, account switches, the consent/token/revoke endpoints, the per-call checks;
* ``simulator``: ``GoogleHealthSimulator``, its query cache and the data and profile routes.
"""

from wearable_assets_dev.simulators.google_health.filters import Bound, parse_filter, utc_window
from wearable_assets_dev.simulators.google_health.oauth import GoogleHealthState
from wearable_assets_dev.simulators.google_health.points import PointSet, build_points
from wearable_assets_dev.simulators.google_health.rollups import rollup_value
from wearable_assets_dev.simulators.google_health.simulator import GoogleHealthSimulator
from wearable_assets_dev.simulators.google_health.vocabulary import (
    ACCESS_TOKEN_LIFETIME_S,
    ACTIVITY,
    DATA_SOURCE_FAMILIES,
    DATA_TYPES,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    METRICS,
    NIGHT_TYPES,
    PROFILE,
    READ_SCOPES,
    SCOPE_PREFIX,
    SERVER_PAGE_CAP,
    SESSION_PAGE_SIZE,
    SETTINGS,
    SLEEP,
    SLEEP_PROCESSING,
    UNBOUNDED_HISTORY_DAYS,
    ApiError,
    DataType,
)

__all__ = [
    "ACCESS_TOKEN_LIFETIME_S",
    "ACTIVITY",
    "DATA_SOURCE_FAMILIES",
    "DATA_TYPES",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "METRICS",
    "NIGHT_TYPES",
    "PROFILE",
    "READ_SCOPES",
    "SCOPE_PREFIX",
    "SERVER_PAGE_CAP",
    "SESSION_PAGE_SIZE",
    "SETTINGS",
    "SLEEP",
    "SLEEP_PROCESSING",
    "UNBOUNDED_HISTORY_DAYS",
    "ApiError",
    "Bound",
    "DataType",
    "GoogleHealthSimulator",
    "GoogleHealthState",
    "PointSet",
    "build_points",
    "parse_filter",
    "rollup_value",
    "utc_window",
]
