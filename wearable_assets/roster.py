"""The participant roster: who is enrolled, on which devices, in which time zone.

The roster is a CSV file (easy to keep in a spreadsheet by a study coordinator) mirrored into
``wearables.participants`` and into Dagster's dynamic ``participants`` partitions. Loading is
strict: a bad row stops the sync with a message naming the row, because a silently skipped
participant is missing data nobody notices until analysis. The header is strict too: an
unknown or misspelt column is refused (a column ``fitbit_provder`` would otherwise read as "no
Fitbit" for everyone and unlink every device), as are duplicate and unnamed columns and rows
with more cells than the header. A UTF-8 byte-order mark (spreadsheet "CSV UTF-8" exports) is
accepted.

Whether a valid roster may be *applied* (it must not unlink the devices of participants who
already have data) is decided against the database in ``participants.plan``.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wearable_assets.participant_day import (
    InvalidParticipantId,
    validate_participant_id,
)

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
REQUIRED_COLUMNS = ("participant_id", "study_id", "time_zone", "enrolled_from")


class RosterError(ValueError):
    """A roster that cannot be used: one line per problem, each naming the row or column to fix.

    ``str()`` is the first problem (plus how many more), so a sensor tick or a CLI error stays
    one line; ``problems`` holds them all for ``wearable-assets roster validate``.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        more = len(self.problems) - 1
        super().__init__(self.problems[0] + (
            f" (and {more} more problem{'s' * (more > 1)}: `wearable-assets roster validate` lists them all)"
            if more else ""
        ))


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
    """Validate every row; raises one ``RosterError`` listing the problems of all bad rows."""
    participants: list[Participant] = []
    problems: list[str] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"{source} line {line}"
        extra = row.get(None)  # type: ignore[call-overload]  # DictReader's restkey for surplus cells
        if extra and any((cell or "").strip() for cell in extra):
            problems.append(f"{where}: {len(extra)} more cell(s) than the header has columns; "
                            "add the column to the header or remove the cells")
            continue
        try:
            participant = parse_row(row, where)
        except RosterError as exc:
            problems.extend(exc.problems)
            continue
        if participant.participant_id in seen:
            problems.append(f"{where}: participant {participant.participant_id} is listed twice")
            continue
        seen.add(participant.participant_id)
        participants.append(participant)
    if problems:
        raise RosterError(problems)
    return participants


def check_header(fieldnames: list[str] | None, source: str) -> list[str]:
    """Problems with the header line: unknown (with the nearest known name), duplicate,
    unnamed and missing required columns. Empty when the header is usable."""
    if not fieldnames:
        return [f"{source} is empty: the first line must be the header ({', '.join(COLUMNS)})"]
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    for number, name in enumerate(fieldnames, start=1):
        if not name:
            problems.append(f"{source} header: column {number} has no name (a trailing comma?); remove it")
        elif name in first_seen:
            problems.append(
                f"{source} header: column {name!r} appears twice (columns {first_seen[name]} and {number}); keep one"
            )
        elif name not in COLUMNS:
            near = difflib.get_close_matches(name.lower(), COLUMNS, n=1, cutoff=0.6)
            hint = f"did you mean {near[0]!r}?" if near else f"known columns: {', '.join(COLUMNS)}"
            problems.append(f"{source} header: unknown column {name!r} ({hint}); rename or remove it")
        first_seen.setdefault(name, number)
    missing = [c for c in REQUIRED_COLUMNS if c not in first_seen]
    if missing:
        problems.append(f"{source} header: missing required column(s) {', '.join(missing)}")
    return problems


def load_roster(path: Path | str) -> list[Participant]:
    """Read and validate the roster file; raises ``RosterError`` (all problems) or ``OSError``.

    ``utf-8-sig`` accepts a byte-order mark and reads a file without one unchanged. Header
    names are trimmed like cells; a bad header stops before the rows are read, since every
    row would be misread.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [name.strip() for name in reader.fieldnames or []]
            problems = check_header(header, path.name)
            if problems:
                raise RosterError(problems)
            reader.fieldnames = header
            return parse_rows(reader, source=path.name)
    except UnicodeDecodeError as exc:
        raise RosterError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                          "save the file as CSV UTF-8") from None
