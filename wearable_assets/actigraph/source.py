"""The ActiGraph CentrePoint dlt source: DailyStatistics for one subject over a date range.

Built on dlt's ``rest_api`` with the stock ``OAuth2ClientCredentials`` flow, plus the three
things CentrePoint needs that dlt does not do by itself:

* the token is renewed ``token_refresh_margin_s`` before it expires (dlt would wait for the
  exact second, so a request in flight at that moment gets a 401), and a 401 that still
  happens (token revoked, clock skew) renews the token and repeats the request once;
* paging is ``offset``/``limit`` until ``totalCount``. ``links.next`` is deliberately not
  followed: the documented next link carries only offset/limit, so the date filters would
  be lost;
* errors keep the API's own words. CentrePoint answers 400 with a ``text/plain`` sentence
  saying what to fix; ``CentrePointError`` puts it in the exception verbatim. A 404 means
  "this subject has no data here" (ActiGraph's example client treats it so) and ends the
  resource with no rows instead of failing.

CentrePoint allows 500 requests per IP in any minute (a sliding window; 429 with
``Retry-After`` past it). Every request this process sends to it, token requests, pages, dlt's
retries and the 401 renewal's repeat alike, first takes a slot of one process-wide sliding-window
limiter (``request_limiter``: ``WEARABLES_CENTREPOINT_REQUESTS`` per
``WEARABLES_CENTREPOINT_WINDOW_S``, default 500 per 60 s) through the session's HTTP adapter
(``RateLimitedAdapter``), so however many participants a step fetches at once, the step never
goes over the limit; the ``centrepoint_api`` pool (one step at a time on the instance) makes that
the machine's. Counting token requests is deliberate caution: the real token endpoint is another
host, whose limit is not documented.

429 (honouring ``Retry-After``, the backstop should anything else share the IP) and 5xx are
retried by dlt's own HTTP client, with the attempt count and back-off taken from this source's
configuration.

Configuration is resolved the dlt way (explicit argument > environment > ``.dlt/secrets.toml``
> ``.dlt/config.toml`` > the default here). The settings are named ``centrepoint_*`` so the
project's plain environment variables (``CENTREPOINT_BASE_URL``, ``CENTREPOINT_TOKEN_URL``,
``CENTREPOINT_CLIENT_ID``, ``CENTREPOINT_CLIENT_SECRET``) are found by dlt's own lookup; the
older pipeline's ``CENTERPOINT_USERNAME``/``CENTERPOINT_PASSWORD`` are read last, as aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

import dlt
import pendulum
from dlt.common.configuration import NotResolved, configspec
from dlt.common.typing import TSecretStrValue
from dlt.extract.exceptions import ResourceExtractionError
from dlt.sources.helpers.requests.retry import Client
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources
from requests import HTTPError, PreparedRequest, RequestException, Response
from requests.adapters import HTTPAdapter

from wearable_assets import settings
from wearable_assets.rate_limits import SlidingWindowLimiter, shared_limiter

DEFAULT_BASE_URL = "https://api.actigraphcorp.com"
DEFAULT_TOKEN_URL = "https://auth.actigraphcorp.com/connect/token"
#: CentrePoint lists subjects, Analytics serves DailyStatistics; request only granted scopes.
DEFAULT_SCOPE = "CentrePoint Analytics"
#: CentrePoint's maximum page size.
MAX_PAGE_LIMIT = 100
#: Names the older stand-alone pipeline used for the client id and secret (still honoured).
LEGACY_CLIENT_ID_ENV = settings.LEGACY_CENTREPOINT_CLIENT_ID_ENV
LEGACY_CLIENT_SECRET_ENV = settings.LEGACY_CENTREPOINT_CLIENT_SECRET_ENV


#: The key of every request in the limiter: CentrePoint counts per IP, and a process has one.
LIMIT_KEY = "centrepoint"


def request_limiter() -> SlidingWindowLimiter:
    """The process-wide limiter of CentrePoint requests, for the configured budget."""
    limit = settings.integer(settings.CENTREPOINT_REQUESTS_ENV, 500, minimum=1, unit="requests")
    window_s = settings.positive_number(settings.CENTREPOINT_WINDOW_ENV, 60.0, "seconds")
    return shared_limiter(LIMIT_KEY, limit, window_s)


class RateLimitedAdapter(HTTPAdapter):
    """Sends each request inside a slot of ``limiter``, held until its answer has arrived.

    The adapter is the one place every request of a session passes (dlt's retries call the
    session again; the 401 renewal sends through ``response.connection``, which is this adapter).
    """

    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        with self.limiter.slot(LIMIT_KEY):
            return super().send(request, *args, **kwargs)


class CentrePointError(HTTPError):
    """An HTTP error from CentrePoint, with the response body quoted verbatim."""


class MissingCredentials(ValueError):
    """No client id/secret anywhere dlt looks, nor in the legacy variables."""


@dataclass
class FetchStats:
    """What one extraction cost; shown in Dagster metadata and ``ingest_status``."""

    api_calls: int = 0  # every API response, retried ones included
    pages: int = 0  # successful DailyStatistics pages
    token_requests: int = 0
    not_found: bool = False  # the API answered 404: no data for this subject/range
    statuses: dict[int, int] = field(default_factory=dict)  # status code -> count

    def count(self, response: Response) -> None:
        self.api_calls += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if response.ok:
            self.pages += 1


def _quote_error(response: Response, what: str, secrets: tuple[str | None, ...] = ()) -> CentrePointError:
    """The API's error text verbatim, except our own secrets should a body ever echo them."""
    body = response.text.strip() or response.reason or "(empty body)"
    for secret in secrets:
        if secret:
            body = body.replace(secret, "[redacted]")
    return CentrePointError(f"CentrePoint {what} answered HTTP {response.status_code}: {body}", response=response)


@configspec
class CentrePointAuth(OAuth2ClientCredentials):
    """Client-credentials auth that renews early and retries a 401 once with a new token."""

    token_refresh_margin_s: int = 60
    stats: Annotated[FetchStats | None, NotResolved()] = None

    def parse_expiration_in_seconds(self, response_json: Any) -> int:
        return max(super().parse_expiration_in_seconds(response_json) - self.token_refresh_margin_s, 0)

    def obtain_token(self) -> None:
        response = self.session.post(self.access_token_url, **self.build_access_token_request())
        if self.stats is not None:
            self.stats.token_requests += 1
        if not response.ok:
            # The body is an OAuth error code such as {"error":"invalid_client"}; it never
            # contains the secret, which travels only in our request.
            raise _quote_error(response, "token endpoint", (self.client_secret,))
        response_json = response.json()
        self.parse_native_representation(self.parse_access_token(response_json))
        self.token_expiry = pendulum.now().add(seconds=self.parse_expiration_in_seconds(response_json))

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request = super().__call__(request)
        request.register_hook("response", self._renew_once_on_401)
        return request

    def _renew_once_on_401(self, response: Response, **send_kwargs: Any) -> Response:
        """On 401, get a new token and send the same request again, once (not through the
        session, so this hook does not run a second time)."""
        if response.status_code != 401 or response.request is None or response.connection is None:
            return response
        if self.stats is not None:
            self.stats.count(response)
        self.obtain_token()
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {self.access_token}"
        renewed = response.connection.send(retry, **send_kwargs)
        renewed.history.append(response)
        renewed.request = retry
        return renewed


def resolve_credentials(client_id: str | None, client_secret: str | None) -> tuple[str, str]:
    """dlt's values first, then the legacy variables; a clear error if neither is set."""
    client_id = client_id or settings.optional(LEGACY_CLIENT_ID_ENV)
    client_secret = client_secret or settings.optional(LEGACY_CLIENT_SECRET_ENV)
    if not client_id or not client_secret:
        raise MissingCredentials(
            f"CentrePoint client id/secret not configured: set {settings.CENTREPOINT_CLIENT_ID_ENV} and "
            f"{settings.CENTREPOINT_CLIENT_SECRET_ENV} (or SOURCES__CENTREPOINT__CENTREPOINT_CLIENT_ID/_SECRET, or "
            f"[sources.centrepoint] in .dlt/secrets.toml, or the legacy {LEGACY_CLIENT_ID_ENV}/"
            f"{LEGACY_CLIENT_SECRET_ENV}). ActiGraph support issues the pair."
        )
    return client_id, client_secret


@dlt.source(name="centrepoint", max_table_nesting=0)
def centrepoint_source(
    study_id: int,
    subject_id: int,
    from_date: date | str,
    to_date: date | str,
    daily_statistics_setting_id: str | None = None,
    centrepoint_client_id: TSecretStrValue | None = dlt.secrets.value,
    centrepoint_client_secret: TSecretStrValue | None = dlt.secrets.value,
    centrepoint_base_url: str = DEFAULT_BASE_URL,
    centrepoint_token_url: str = DEFAULT_TOKEN_URL,
    scope: str = DEFAULT_SCOPE,
    page_limit: int = MAX_PAGE_LIMIT,
    token_refresh_margin_s: int = 60,
    request_max_attempts: int = 5,
    request_backoff_factor: float = 1.0,
    request_max_retry_delay_s: float = 300.0,
    request_timeout_s: float = 60.0,
    stats: Annotated[FetchStats | None, NotResolved()] = None,
) -> Any:
    """DailyStatistics of ``subject_id`` in ``study_id`` with ``fromDate``..``toDate`` inclusive.

    Records are yielded exactly as the API sends them (``max_table_nesting=0`` keeps each
    aggregation block whole), so optional blocks that a study does not configure are simply
    absent and fields the API adds later pass through. Pass ``stats`` to learn the call count.
    """
    if not 1 <= page_limit <= MAX_PAGE_LIMIT:
        raise ValueError(f"page_limit must be 1..{MAX_PAGE_LIMIT} (CentrePoint's limit), not {page_limit}")
    client_id, client_secret = resolve_credentials(centrepoint_client_id, centrepoint_client_secret)
    stats = stats if stats is not None else FetchStats()
    session = Client(
        raise_for_status=False,
        request_timeout=request_timeout_s,
        request_max_attempts=request_max_attempts,
        request_backoff_factor=request_backoff_factor,
        request_max_retry_delay=request_max_retry_delay_s,
    ).session
    adapter = RateLimitedAdapter(request_limiter())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    auth = CentrePointAuth(
        access_token_url=centrepoint_token_url,
        client_id=client_id,
        client_secret=client_secret,
        access_token_request_data={"scope": scope},
        token_refresh_margin_s=token_refresh_margin_s,
        session=session,
        stats=stats,
    )

    def no_data(response: Response) -> None:
        stats.not_found = True
        raise IgnoreResponseException

    def fail_with_body(response: Response) -> None:
        if response.status_code >= 400:
            path = response.request.path_url if response.request else ""
            raise _quote_error(response, f"GET {path}", (client_secret, auth.access_token))

    params: dict[str, Any] = {"fromDate": str(from_date), "toDate": str(to_date)}
    if daily_statistics_setting_id:
        params["dailyStatisticsSettingId"] = daily_statistics_setting_id
    config: RESTAPIConfig = {
        "client": {
            "base_url": centrepoint_base_url.rstrip("/") + "/",
            "auth": auth,
            "headers": {"Accept": "application/json"},
            "session": session,
        },
        "resources": [
            {
                "name": "daily_statistics",
                # The API's natural key; ``id`` is not known to survive a recomputation.
                "primary_key": ["subjectId", "dailyStatisticsSettingId", "date"],
                "write_disposition": "merge",
                "endpoint": {
                    "path": f"analytics/v3/Studies/{int(study_id)}/Subjects/{int(subject_id)}/DailyStatistics",
                    "params": params,
                    "paginator": {
                        "type": "offset",
                        "limit": page_limit,
                        "offset_param": "offset",
                        "limit_param": "limit",
                        "total_path": "totalCount",
                    },
                    "data_selector": "items",
                    "response_actions": [
                        stats.count,
                        {"status_code": 404, "action": no_data},
                        fail_with_body,
                    ],
                },
            }
        ],
    }
    yield from rest_api_resources(config)


@dataclass
class Fetch:
    """The records of one extraction and what it cost."""

    records: list[dict[str, Any]]
    stats: FetchStats


def fetch_daily_statistics(
    study_id: int, subject_id: int, from_date: date, to_date: date, **options: Any
) -> Fetch:
    """Run the source in-process (no dlt pipeline, so no pipeline state to share between
    concurrent runs) and return its records; ``options`` are source arguments, and the ones
    left out are resolved from dlt configuration."""
    stats = FetchStats()
    source = centrepoint_source(
        study_id, subject_id, from_date.isoformat(), to_date.isoformat(), stats=stats, **options
    )
    try:
        records = list(source.resources["daily_statistics"])
    except ResourceExtractionError as exc:
        # dlt wraps whatever the generator raised; hand callers the HTTP error itself
        # (CentrePointError with the API's words, or a connection error after the retries).
        if isinstance(exc.__cause__, RequestException):
            raise exc.__cause__ from exc
        raise
    return Fetch(records=records, stats=stats)
