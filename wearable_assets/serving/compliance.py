"""Compliance endpoints for study coordinators and the page that shows them (``/compliance``).

``GET /compliance/grid`` participant x day states over a window (JSON, or ``format=csv`` for
exactly the same rows), ``GET /compliance/cohort`` adherence per study and ISO week,
``GET /compliance/reconsent`` the re-consent ledger, ``GET /compliance/studies`` the study
filter's choices. The states come from one SQL derivation (``compliance/queries.py``) that the
alert asset uses too. Same error contract and read-only login as the rest of the API (``api.py``).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from wearable_assets.compliance import ledger
from wearable_assets.compliance import queries as cq
from wearable_assets.compliance.states import STATES
from wearable_assets.serving.db import ReadOnlyPool
from wearable_assets.serving.params import MAX_ID_CHARS, MAX_OFFSET
from wearable_assets.serving.routing import BadRequest, parse_date

#: Participants per grid page by default, and at most.
DEFAULT_GRID_LIMIT = 100
MAX_GRID_LIMIT = 500
#: Default window: the four complete UTC weeks' worth of days before today.
DEFAULT_WINDOW_DAYS = 28

CSV_COLUMNS = (
    "participant_id", "study_id", "local_date", "state", "reason", "fitbit_state", "fitbit_reason",
    "actigraph_state", "actigraph_reason", "valid_days_last_7", "valid_days_last_14", "valid_days_last_28",
    "last_sync", "auth_state", "auth_state_since",
)


class GridFormat(str, Enum):
    JSON = "json"
    CSV = "csv"


class Cell(BaseModel):
    local_date: date
    state: str = Field(description="Combined state of the day: " + ", ".join(STATES))
    reason: str = Field(description="Why, per device")
    fitbit_state: str
    fitbit_reason: str
    actigraph_state: str
    actigraph_reason: str


class GridParticipant(BaseModel):
    participant_id: str
    study_id: str
    time_zone: str
    fitbit_provider: str | None
    has_actigraph: bool
    enrolled_from: date
    enrolled_to: date | None
    auth_state: str | None = Field(description="active | needs_reconsent | not_connected; null without Fitbit")
    reconsent_reason: str | None
    auth_state_since: datetime | None = Field(description="When the token entered its current state")
    last_sync: datetime | None = Field(description="Latest device sync of any device")
    fitbit_last_sync: datetime | None
    actigraph_last_sync: datetime | None
    valid_days_last_7: int
    valid_days_last_14: int
    valid_days_last_28: int
    enrolled_days_last_28: int
    cells: list[Cell]


class GridPage(BaseModel):
    study_id: str | None
    start: date
    end: date
    as_of: date = Field(description="valid_days_last_N count the N local days before this date")
    days: list[date]
    states: dict[str, str] = Field(description="The state vocabulary with what each means")
    total_participants: int
    limit: int
    offset: int
    next_offset: int | None
    participants: list[GridParticipant]


class CohortWeek(BaseModel):
    study_id: str
    iso_year: int
    iso_week: int
    week_start: date
    days_in_window: int = Field(description="Days of this week inside the window (7 unless cut)")
    enrolled_participants: int
    participant_days: int = Field(description="Enrolled participant-days (outside enrolment not counted)")
    valid_days: int
    adherence_pct: float | None
    states: dict[str, int] = Field(description="Participant-days per state")


class Transition(BaseModel):
    from_state: str | None
    to_state: str
    reason: str
    detail: str | None
    at: datetime


class LedgerEntry(BaseModel):
    participant_id: str
    study_id: str
    provider: str
    state: str = Field(description=" -> ".join(ledger.STATES))
    reason: str
    since: datetime
    opened_at: datetime
    transitions: list[Transition]


class Study(BaseModel):
    study_id: str
    participants: int


def _window(start: str | None, end: str | None) -> tuple[date, date]:
    last = parse_date("end", end) or (datetime.now(timezone.utc).date() - timedelta(days=1))
    first = parse_date("start", start) or (last - timedelta(days=DEFAULT_WINDOW_DAYS - 1))
    if first > last:
        raise BadRequest(f"start={first} is after end={last}; both days are included in the window")
    if (last - first).days + 1 > cq.MAX_WINDOW_DAYS:
        raise BadRequest(f"the window {first} to {last} holds {(last - first).days + 1} days; at most "
                         f"{cq.MAX_WINDOW_DAYS} are shown at once: page through it with start/end")
    return first, last


def _check_study(conn: Any, study_id: str | None) -> None:
    if study_id is None:
        return
    known = [s["study_id"] for s in cq.studies(conn)]
    if study_id not in known:
        raise BadRequest(f"unknown study {study_id!r}; GET /compliance/studies lists them "
                         f"({', '.join(known[:10]) or 'none yet'})")


def _csv_safe(value: Any) -> str:
    """Text for a spreadsheet cell: a leading = + - @ would make Excel run it as a formula."""
    text = "" if value is None else value.isoformat() if isinstance(value, (date, datetime)) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def grid_csv(page: dict[str, Any]) -> str:
    """The grid page as CSV: one line per participant-day, with the participant's columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for person in page["participants"]:
        for cell in person["cells"]:
            row = {**person, **cell}
            writer.writerow([_csv_safe(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def add_compliance_routes(app: FastAPI, pool: ReadOnlyPool, static_dir: Any) -> None:
    """Register the compliance endpoints and page on ``app``."""

    @app.get("/compliance", include_in_schema=False)
    def compliance_page() -> FileResponse:
        return FileResponse(static_dir / "compliance.html")

    @app.get("/compliance/studies", response_model=list[Study], tags=["compliance"])
    def studies() -> list[dict[str, Any]]:
        """Studies with participants in the roster (the dashboard's study filter)."""
        return pool.run(cq.studies)

    @app.get("/compliance/grid", response_model=GridPage, tags=["compliance"],
             responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}})
    def grid(
        study_id: str | None = Query(None, max_length=MAX_ID_CHARS, description="Only this study"),
        start: str | None = Query(None, max_length=10, json_schema_extra={"format": "date"},
                                  description="First local day, YYYY-MM-DD (default: 28 days before end)"),
        end: str | None = Query(None, max_length=10, json_schema_extra={"format": "date"},
                                description="Last local day, included, YYYY-MM-DD (default: yesterday, UTC)"),
        as_of: str | None = Query(None, max_length=10, json_schema_extra={"format": "date"},
                                  description="Count valid days in the 7/14/28 days before this date "
                                              "(default: today, UTC)"),
        limit: int = Query(DEFAULT_GRID_LIMIT, ge=1, le=MAX_GRID_LIMIT, description="Participants per page"),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        format: GridFormat = Query(GridFormat.JSON, description="json, or csv: exactly the same rows"),
    ) -> Any:
        """Participant x local day states (combined and per device, each with its reason) over a window,
        a page of participants at a time, with valid days in the last 7/14/28 days, last sync and
        token state."""
        first, last = _window(start, end)
        as_of_day = parse_date("as_of", as_of) or datetime.now(timezone.utc).date()

        def work(conn: Any) -> dict[str, Any]:
            _check_study(conn, study_id)
            page = cq.grid(conn, first, last, as_of_day, study_id=study_id, limit=limit, offset=offset)
            following = offset + len(page.participants)
            return {
                "study_id": study_id, "start": first, "end": last, "as_of": as_of_day,
                "days": [first + timedelta(days=i) for i in range((last - first).days + 1)],
                "states": STATES, "total_participants": page.total_participants, "limit": limit,
                "offset": offset, "next_offset": following if following < page.total_participants else None,
                "participants": page.participants,
            }

        page = pool.run(work)
        if format is GridFormat.CSV:
            name = f"compliance_{study_id or 'all'}_{first}_{last}.csv"
            return Response(grid_csv(page), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return page

    @app.get("/compliance/cohort", response_model=list[CohortWeek], tags=["compliance"])
    def cohort(
        study_id: str | None = Query(None, max_length=MAX_ID_CHARS, description="Only this study"),
        start: str | None = Query(None, max_length=10, json_schema_extra={"format": "date"},
                                  description="First local day, YYYY-MM-DD"),
        end: str | None = Query(None, max_length=10, json_schema_extra={"format": "date"},
                                description="Last local day, included, YYYY-MM-DD"),
    ) -> list[dict[str, Any]]:
        """Adherence per study and ISO week: valid / enrolled participant-days, from the grid's states."""
        first, last = _window(start, end)

        def work(conn: Any) -> list[dict[str, Any]]:
            _check_study(conn, study_id)
            return cq.cohort(conn, first, last, study_id)

        return pool.run(work)

    @app.get("/compliance/reconsent", response_model=list[LedgerEntry], tags=["compliance"])
    def reconsent(
        study_id: str | None = Query(None, max_length=MAX_ID_CHARS, description="Only this study"),
        participant_id: str | None = Query(None, max_length=MAX_ID_CHARS, description="Only this participant"),
    ) -> list[dict[str, Any]]:
        """The re-consent ledger: each participant's state per provider since when, and every step."""

        def work(conn: Any) -> list[dict[str, Any]]:
            _check_study(conn, study_id)
            return ledger.ledger_rows(conn, study_id, participant_id)

        return pool.run(work)
