"""Fetching one participant-day and landing its raw payloads in the lake (``fitbit/raw_payloads``).

Raw landing keeps, per participant-day, the exact response bodies of each fetch in a folder of
their own, ``fetch=<UTC time>/<provider>.<request>.p<page>.json.gz``, and a ``_manifest`` at the
participant-day's deterministic key naming the current fetch and its payloads. The manifest is
written last, so it only ever points at a complete set. It also records the outcome: ``ok``,
``needs_reconsent`` or ``api_error``.

Nothing already landed is lost when a re-fetch goes wrong: a failed fetch keeps its own folder
(the malformed page that broke it included) and its manifest carries ``last_ok``, the previous
good fetch, whose payloads stay in place. Only a *successful* fetch removes the older folders,
because it supersedes them, and it removes the folders it empties. Loading what was landed is
``ingest``'s job; this module is the one that needs the HTTP and OAuth side (it turns their
errors into the outcome).

Overlapping fetches of one participant-day (a backfill over the daily run, a retry) would prune
each other's folders and leave a manifest naming payloads that no longer exist, so ``land_day``
holds the participant-day's lock (``Timescale.participant_day_lock``, source ``fitbit``) from
reading the previous manifest to the prune; the loaders hold the same lock, so a load never
reads a fetch folder while a fetch is pruning it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol

from wearable_assets.fitbit.canonical import DayWindow
from wearable_assets.fitbit.http import ApiError, FetchResult, Sink
from wearable_assets.fitbit.ingest import (
    FETCH_PREFIX,
    MANIFEST,
    RAW_SOURCE,
    DayOutcome,
    read_manifest,
)
from wearable_assets.oauth.app import OAuthConfigError
from wearable_assets.oauth.crypto import TokenKeyError
from wearable_assets.oauth.errors import NeedsReconsent, TokenEndpointError
from wearable_assets.participant_day import ParticipantDay
from wearable_assets.roster import Participant
from wearable_assets.storage.lake import Lake
from wearable_assets.storage.timescale import Timescale


class Client(Protocol):
    provider: str

    def fetch_day(self, window: DayWindow, sink: Sink) -> FetchResult: ...


def _fetch_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def _manifest(pday: ParticipantDay, participant: Participant, provider: str, status: str, *, fetch: str,
              fetched_at: datetime, payloads: list[str], api_calls: int, detail: str = "") -> dict[str, Any]:
    return {
        "participant_id": pday.participant_id,
        "date": pday.day.isoformat(),
        "provider": provider,
        "time_zone": participant.time_zone,
        "status": status,
        "detail": detail,
        "fetch": fetch,
        "payloads": payloads,
        "api_calls": api_calls,
        "fetched_at": fetched_at.isoformat(),
    }


def _last_ok(previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """The latest good fetch as of ``previous`` (the manifest being replaced)."""
    if previous is None:
        return None
    if previous["status"] == "ok":
        return {k: v for k, v in previous.items() if k != "last_ok"}
    return previous.get("last_ok")


def _prune_fetches(lake: Lake, pday: ParticipantDay, keep: set[str]) -> None:
    """Delete raw payloads of fetches other than ``keep`` (fetch ids; "" = top-level payloads
    of manifests that predate fetch folders), and the folders that leaves empty: re-runs must
    not pile up empty ``fetch=`` folders. The manifest itself always stays."""
    for name in lake.list_raw(RAW_SOURCE, pday.participant_id, pday.day):
        folder = name.split("/", 1)[0] if "/" in name else ""
        fetch = folder.removeprefix(FETCH_PREFIX) if folder.startswith(FETCH_PREFIX) else ""
        if name != MANIFEST and fetch not in keep:
            lake.delete_raw(RAW_SOURCE, pday.participant_id, pday.day, name)  # and the folder it empties
    # Folders left empty before deletes removed them (or by a crash between file and folder).
    lake.remove_empty_raw_folders(RAW_SOURCE, pday.participant_id, pday.day)


def land_day(pday: ParticipantDay, participant: Participant, client: Client, lake: Lake,
             timescale: Timescale) -> DayOutcome:
    """Fetch and land one participant-day. Auth problems and API failures become the outcome
    (and the manifest's status) instead of exceptions, so the caller can carry on with others.

    The whole of it (previous manifest, fetch, landing, manifest, prune) runs under the
    participant-day's lock, taken through ``timescale`` (module docstring)."""
    with timescale.participant_day_lock(RAW_SOURCE, pday.participant_id, pday.day):
        return _land_day(pday, participant, client, lake)


def _land_day(pday: ParticipantDay, participant: Participant, client: Client, lake: Lake) -> DayOutcome:
    provider = client.provider
    fetched_at = datetime.now(timezone.utc)
    fetch = _fetch_id(fetched_at)
    previous = read_manifest(lake, pday)
    landed: list[str] = []

    def sink(name: str, body: bytes) -> str:
        landed.append(name)
        return lake.land_raw(RAW_SOURCE, pday.participant_id, pday.day,
                             f"{FETCH_PREFIX}{fetch}/{provider}.{name}", body)

    session = getattr(client, "session", None)
    calls_before = session.calls if session is not None else 0
    try:
        result = client.fetch_day(DayWindow.of(pday.day, participant.time_zone), sink)
    except NeedsReconsent as exc:
        outcome = DayOutcome(pday.key, provider, "needs_reconsent", exc.message)
    except (ApiError, TokenEndpointError, OAuthConfigError, TokenKeyError) as exc:
        # Transient (token endpoint down) or configuration (client id/secret, token key):
        # not the participant's doing, so no re-consent; the run fails after the others.
        outcome = DayOutcome(pday.key, provider, "api_error", str(exc))
    else:
        outcome = DayOutcome(pday.key, provider, "ok", api_calls=result.api_calls)
    if session is not None:
        outcome.api_calls = session.calls - calls_before
    manifest = _manifest(pday, participant, provider, outcome.status, fetch=fetch, fetched_at=fetched_at,
                         payloads=landed, api_calls=outcome.api_calls, detail=outcome.detail)
    last_ok = None if outcome.status == "ok" else _last_ok(previous)
    if last_ok is not None:
        manifest["last_ok"] = last_ok
    lake.land_raw(RAW_SOURCE, pday.participant_id, pday.day, MANIFEST, manifest)
    # Superseded fetches go only now that the manifest points at this one. After a failure the
    # last good fetch stays, and so does this attempt's folder (what broke it, for inspection).
    keep = {fetch} | ({last_ok.get("fetch") or ""} if last_ok is not None else set())
    _prune_fetches(lake, pday, keep)
    return outcome
