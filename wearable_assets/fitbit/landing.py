"""Fetching one participant-day and landing its raw payloads in the lake (``fitbit/raw_payloads``).

Raw landing keeps, per participant-day, the exact response bodies of each fetch in a folder of
their own, ``fetch=<UTC time>/<provider>.<request>.p<page>.json.gz``, and a ``_manifest`` at the
participant-day's deterministic key naming the current fetch and its payloads (its layout, and
its reading and writing, are in ``manifest``). The manifest is written last, so it only ever
points at a complete set. It also records the outcome: ``ok``, ``needs_reconsent`` or ``api_error``.

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
from typing import Protocol

from wearable_assets.fitbit.canonical import DayWindow
from wearable_assets.fitbit.http import ApiError, FetchResult, Sink
from wearable_assets.fitbit.ingest import DayOutcome
from wearable_assets.fitbit.manifest import (
    MANIFEST,
    RAW_SOURCE,
    fetch_id,
    fetch_of,
    fetch_payload_name,
    last_ok,
    new_manifest,
    read_manifest,
    write_manifest,
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


def _prune_fetches(lake: Lake, pday: ParticipantDay, keep: set[str]) -> None:
    """Delete raw payloads of fetches other than ``keep`` (fetch ids; "" = top-level payloads
    of manifests that predate fetch folders), and the folders that leaves empty: re-runs must
    not pile up empty ``fetch=`` folders. The manifest itself always stays."""
    for name in lake.list_raw(RAW_SOURCE, pday.participant_id, pday.day):
        if name != MANIFEST and fetch_of(name) not in keep:
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
    fetch = fetch_id(fetched_at)
    previous = read_manifest(lake, pday)
    landed: list[str] = []

    def sink(name: str, body: bytes) -> str:
        landed.append(name)
        return lake.land_raw(RAW_SOURCE, pday.participant_id, pday.day, fetch_payload_name(fetch, provider, name),
                             body)

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
    manifest = new_manifest(pday, participant.time_zone, provider, outcome.status, fetch=fetch,
                            fetched_at=fetched_at, payloads=landed, api_calls=outcome.api_calls, detail=outcome.detail)
    good = None if outcome.status == "ok" else last_ok(previous)
    if good is not None:
        manifest["last_ok"] = good
    write_manifest(lake, pday, manifest)
    # Superseded fetches go only now that the manifest points at this one. After a failure the
    # last good fetch stays, and so does this attempt's folder (what broke it, for inspection).
    keep = {fetch} | ({good.get("fetch") or ""} if good is not None else set())
    _prune_fetches(lake, pday, keep)
    return outcome
