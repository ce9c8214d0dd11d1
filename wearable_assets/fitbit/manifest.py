"""The raw landing's ``_manifest``: the one module that builds, writes and reads it.

Per participant-day, the raw landing keeps each fetch's exact response bodies in a folder of
their own, ``fetch=<UTC time>/<provider>.<request>.p<page>.json.gz``, and a ``_manifest`` at the
participant-day's deterministic key naming the current fetch, its payloads, the zone whose local
day was fetched and the outcome (``ok``, ``needs_reconsent``, ``api_error``). ``landing`` writes
it (last, so it only ever points at a complete set); ``ingest`` and the assets read it. A failed
fetch's manifest carries ``last_ok``, the previous good fetch, whose payloads stay in place.

Keeping the layout here (names, the fetch folder, ``last_ok``) means the writer and the readers
cannot disagree about where a payload is. Plain Python: no Dagster, HTTP or OAuth imports.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from wearable_assets.participant_day import ParticipantDay
from wearable_assets.storage.lake import Lake

#: The raw landing's source folder (and the participant-day lock's source).
RAW_SOURCE = "fitbit"
#: The manifest's name in the participant-day's raw folder.
MANIFEST = "_manifest"
#: Prefix of a fetch's folder; the rest is the fetch id (its UTC time).
FETCH_PREFIX = "fetch="


def fetch_id(now: datetime) -> str:
    """A fetch's id: its UTC start time, sortable and unique per participant-day in practice."""
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def fetch_payload_name(fetch: str, provider: str, name: str) -> str:
    """Where payload ``name`` of fetch ``fetch`` is landed, relative to the participant-day's raw folder."""
    return f"{FETCH_PREFIX}{fetch}/{provider}.{name}"


def stored_name(manifest: dict[str, Any], name: str) -> str:
    """Where payload ``name`` of the manifest's fetch is kept, relative to the participant-day's
    raw folder (manifests written before fetch folders existed keep payloads at its top)."""
    if manifest.get("fetch"):
        return fetch_payload_name(manifest["fetch"], manifest["provider"], name)
    return f"{manifest['provider']}.{name}"


def fetch_of(stored: str) -> str:
    """The fetch id a stored name belongs to ("" for the top-level payloads of old manifests)."""
    folder = stored.split("/", 1)[0] if "/" in stored else ""
    return folder.removeprefix(FETCH_PREFIX) if folder.startswith(FETCH_PREFIX) else ""


def new_manifest(pday: ParticipantDay, time_zone: str, provider: str, status: str, *, fetch: str,
                 fetched_at: datetime, payloads: list[str], api_calls: int, detail: str = "") -> dict[str, Any]:
    return {
        "participant_id": pday.participant_id,
        "date": pday.day.isoformat(),
        "provider": provider,
        "time_zone": time_zone,
        "status": status,
        "detail": detail,
        "fetch": fetch,
        "payloads": payloads,
        "api_calls": api_calls,
        "fetched_at": fetched_at.isoformat(),
    }


def last_ok(previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """The latest good fetch as of ``previous`` (the manifest being replaced)."""
    if previous is None:
        return None
    if previous["status"] == "ok":
        return {k: v for k, v in previous.items() if k != "last_ok"}
    return previous.get("last_ok")


def write_manifest(lake: Lake, pday: ParticipantDay, manifest: dict[str, Any]) -> None:
    lake.land_raw(RAW_SOURCE, pday.participant_id, pday.day, MANIFEST, manifest)


def read_manifest(lake: Lake, pday: ParticipantDay) -> dict[str, Any] | None:
    """The participant-day's manifest, or ``None`` when nothing was landed yet."""
    try:
        body = lake.read_raw(RAW_SOURCE, pday.participant_id, pday.day, MANIFEST)
    except FileNotFoundError:
        return None
    return json.loads(body)


def read_landed(lake: Lake, pday: ParticipantDay, manifest: dict[str, Any], name: str) -> bytes:
    """The exact body of payload ``name`` as the manifest's fetch landed it."""
    return lake.read_raw(RAW_SOURCE, pday.participant_id, pday.day, stored_name(manifest, name))
