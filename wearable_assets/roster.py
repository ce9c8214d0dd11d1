"""The participant roster: who is enrolled, on which devices, in which time zone.

The roster is a CSV file (easy to keep in a spreadsheet by a study coordinator) mirrored into
``wearables.participants`` and into Dagster's dynamic ``participants`` partitions. Loading is
strict: a bad row stops the sync with a message naming the row, because a silently skipped
participant is missing data nobody notices until analysis.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wearable_assets.participant_day import InvalidParticipantId, validate_participant_id

FITBIT_PROVIDERS = ("google_health", "fitbit_legacy")
COLUMNS = (
    "participant_id",
    "study_id",
    "time_zone",
    "enrolled_from",
    "enrolled_to",
    "fitbit_provider",
    "fitbit_user_id",
    "centrepoint_study_id",
    "centrepoint_subject_id",
)


class RosterError(ValueError):
    """A roster row that cannot be used, with the row number and what to fix."""


@dataclass(frozen=True)
class Participant:
    participant_id: str
    study_id: str
    time_zone: str
    enrolled_from: date
    enrolled_to: date | None = None
    fitbit_provider: str | None = None
    fitbit_user_id: str | None = None
    centrepoint_study_id: str | None = None
    centrepoint_subject_id: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def providers(self) -> tuple[str, ...]:
        out = [self.fitbit_provider] if self.fitbit_provider else []
        if self.centrepoint_subject_id:
            out.append("centrepoint")
        return tuple(out)

    def enrolled_on(self, day: date) -> bool:
        return self.enrolled_from <= day and (self.enrolled_to is None or day <= self.enrolled_to)

    def as_row(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _parse_date(value: str | None, column: str, where: str) -> date | None:
    text = _optional(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RosterError(f"{where}: {column} {text!r} is not an ISO date (YYYY-MM-DD)") from None


def parse_row(row: dict[str, str], where: str) -> Participant:
    """Validate one roster row; ``where`` names it in error messages (``roster.csv line 4``)."""
    try:
        pid = validate_participant_id((row.get("participant_id") or "").strip())
    except InvalidParticipantId as exc:
        raise RosterError(f"{where}: {exc}") from None
    study_id = _optional(row.get("study_id"))
    if study_id is None:
        raise RosterError(f"{where}: study_id is empty for participant {pid}")
    tz = _optional(row.get("time_zone"))
    try:
        ZoneInfo(tz or "")
    except (ZoneInfoNotFoundError, ValueError):
        raise RosterError(
            f"{where}: time_zone {tz!r} for participant {pid} is not an IANA zone such as 'Europe/London'"
        ) from None
    enrolled_from = _parse_date(row.get("enrolled_from"), "enrolled_from", where)
    if enrolled_from is None:
        raise RosterError(f"{where}: enrolled_from is empty for participant {pid}")
    enrolled_to = _parse_date(row.get("enrolled_to"), "enrolled_to", where)
    if enrolled_to is not None and enrolled_to < enrolled_from:
        raise RosterError(f"{where}: enrolled_to {enrolled_to} is before enrolled_from {enrolled_from}")
    provider = _optional(row.get("fitbit_provider"))
    if provider is not None and provider not in FITBIT_PROVIDERS:
        raise RosterError(
            f"{where}: fitbit_provider {provider!r} must be one of {', '.join(FITBIT_PROVIDERS)} or empty"
        )
    subject = _optional(row.get("centrepoint_subject_id"))
    cp_study = _optional(row.get("centrepoint_study_id"))
    if (subject is None) != (cp_study is None):
        raise RosterError(f"{where}: centrepoint_study_id and centrepoint_subject_id go together")
    return Participant(
        participant_id=pid,
        study_id=study_id,
        time_zone=tz,  # type: ignore[arg-type]  # validated above
        enrolled_from=enrolled_from,
        enrolled_to=enrolled_to,
        fitbit_provider=provider,
        fitbit_user_id=_optional(row.get("fitbit_user_id")) or (pid if provider else None),
        centrepoint_study_id=cp_study,
        centrepoint_subject_id=subject,
    )


def parse_rows(rows: Iterable[dict[str, str]], source: str = "roster") -> list[Participant]:
    participants: list[Participant] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        participant = parse_row(row, f"{source} line {line}")
        if participant.participant_id in seen:
            raise RosterError(f"{source} line {line}: participant {participant.participant_id} is listed twice")
        seen.add(participant.participant_id)
        participants.append(participant)
    return participants


def load_roster(path: Path | str) -> list[Participant]:
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("participant_id", "study_id", "time_zone", "enrolled_from") if c not in (reader.fieldnames or [])]
        if missing:
            raise RosterError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
        return parse_rows(reader, source=str(path.name))
