"""A stand-in for ActiGraph CentrePoint 3 (token endpoint, Studies, Subjects, DailyStatistics).

It behaves the way the public documentation and ActiGraph's own example client say the real
service does, including the awkward parts a client must cope with:

* ``POST /connect/token`` takes ``client_credentials`` as a form; a wrong secret gets
  HTTP 400 ``{"error": "invalid_client"}``. Tokens expire after ``token_expires_in`` seconds
  (3600 like the real service; tests make it short) and an expired or unknown token gets a 401.
* Every list is an ``items``/``links``/``totalCount``/``limit``/``offset`` page. ``links.next``
  carries only ``offset``/``limit``, as in the documentation's example, so a client that
  follows it silently drops its date filters; paging by ``offset`` until ``totalCount`` is right.
* The documentation leaves the meaning of a daily statistic's ``date`` open ("Date/Time of the
  Daily Statistic", one example ``2020-10-05T00:00:00+00:00``), so the simulator serves either
  reading (``date_reading``): ``"utc_instant"`` (default), the subject's local midnight written
  as a UTC instant (``2026-11-01T14:00:00+00:00`` is 2 November in Brisbane), or
  ``"local_date"``, the local calendar date written with ``+00:00`` like the example
  (``2026-11-02T00:00:00+00:00``). ``fromDate``/``toDate`` filter on the calendar date of
  ``date`` as written, so under the first reading a client has to widen its query. Either way
  the first/last epoch times are real UTC instants inside the subject's local day, and a whole
  day covers every minute of it (1380 or 1500 on DST change days).
* Optional aggregation blocks are omitted (not null) for "minimal" studies; one subject has two
  daily-statistics settings; days change after :meth:`recompute` (new values and a new ``id``).
* Errors come back as ``text/plain``; 5xx and other faults are injected through ``state``.
* Each client IP may send ``rate_limit`` API requests in any ``rate_window_s`` (default 500 in
  60 s, a SLIDING window as documented); past it, 429 ``text/plain`` with ``Retry-After``: the
  seconds until the oldest counted request leaves the window. The token endpoint is another host
  for the real service (``auth.actigraphcorp.com``) and is not counted. ``limiter.log`` holds
  every decision (time, IP, 200/429); ``POST /_sim/rate_limit`` (``{"limit": n, "window_s": s}``)
  changes the budget while serving.

Data is a pure function of (subject, day, setting, revision), so every run and every machine
sees the same numbers. It is built from a roster, so any roster with CentrePoint ids works.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from wearable_assets import settings
from wearable_assets.roster import Participant, load_roster
from wearable_assets_dev.simulators.common import SimulatorServer, SimulatorState, SlidingWindowLimit, make_app

SCOPES = ("CentrePoint", "Analytics", "DataAccess", "DataRetrieval")
_NAMESPACE = uuid.UUID("5b0f6c1e-3c2a-4a51-9d1e-0c3e2a7f4b10")  # fixed: setting GUIDs stay the same
#: The two readings of DailyStatistics ``date`` the documentation allows (module docstring).
DateReading = Literal["utc_instant", "local_date"]
DATE_READINGS: tuple[DateReading, ...] = ("utc_instant", "local_date")


@dataclass(frozen=True)
class SimSubject:
    study_id: int
    subject_id: int
    identifier: str  # CentrePoint's subjectIdentifier; the roster's participant id
    time_zone: str
    first_day: date
    last_day: date | None


@dataclass
class SimStudy:
    study_id: int
    minimal: bool  # True: only epochAggregation, every optional block omitted
    settings: list[str] = field(default_factory=list)  # daily-statistics setting GUIDs


def setting_guid(study_id: int, n: int) -> str:
    """The n-th daily-statistics setting of a study (deterministic, so tests can name it)."""
    return str(uuid.uuid5(_NAMESPACE, f"study:{study_id}:daily-statistics-setting:{n}"))


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts`` (the simulator's only source of "randomness")."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


class CentrePointSimulator:
    """CentrePoint on 127.0.0.1; use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self,
        roster: Iterable[Participant] | str | Path | None = None,
        *,
        client_id: str = "centrepoint-sim-client",
        client_secret: str = "centrepoint-sim-secret",
        token_expires_in: int = 3600,
        rate_limit: int = 500,
        rate_window_s: float = 60.0,
        data_end: date | None = None,
        minimal_studies: Iterable[int] | None = None,
        dual_setting_subjects: Iterable[int] | None = None,
        extra_fields: dict[str, Any] | None = None,
        date_reading: DateReading = "utc_instant",
        port: int = 0,
    ) -> None:
        """
        roster: participants (or a roster CSV path; default the demo roster). Those with
            CentrePoint ids become subjects, in their roster time zone.
        data_end: last day with data (default: today in UTC); data starts at enrolment.
        minimal_studies: studies that configure no optional aggregation (default: every
            second study in id order, e.g. 1002 in the demo roster).
        dual_setting_subjects: subjects with two daily-statistics settings (default: the
            first subject of the first study, e.g. 50001).
        extra_fields: added to every daily statistic, to play "the API grew a new field".
        date_reading: how ``date`` is written (module docstring): ``"utc_instant"`` or ``"local_date"``.
        """
        if date_reading not in DATE_READINGS:
            raise ValueError(f"date_reading must be one of {DATE_READINGS}, not {date_reading!r}")
        self.date_reading: DateReading = date_reading
        if roster is None or isinstance(roster, (str, Path)):
            roster = load_roster(roster or settings.REPO_ROOT / "roster" / "demo_roster.csv")
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_expires_in = token_expires_in
        self.data_end = data_end or datetime.now(timezone.utc).date()
        self.extra_fields = dict(extra_fields or {})
        self.subjects: dict[int, SimSubject] = {}
        for p in roster:
            if p.centrepoint_subject_id and p.centrepoint_study_id:
                subject = SimSubject(
                    int(p.centrepoint_study_id), int(p.centrepoint_subject_id), p.participant_id,
                    p.time_zone, p.enrolled_from, p.enrolled_to,
                )
                self.subjects[subject.subject_id] = subject
        study_ids = sorted({s.study_id for s in self.subjects.values()})
        minimal = set(study_ids[1::2] if minimal_studies is None else minimal_studies)
        self.studies = {sid: SimStudy(sid, minimal=sid in minimal, settings=[setting_guid(sid, 0)]) for sid in study_ids}
        if dual_setting_subjects is None:
            firsts = sorted(s.subject_id for s in self.subjects.values() if study_ids and s.study_id == study_ids[0])
            dual_setting_subjects = firsts[:1]
        self.dual_setting_subjects = set(dual_setting_subjects)
        for subject_id in self.dual_setting_subjects:
            study = self.studies[self.subjects[subject_id].study_id]
            if len(study.settings) == 1:
                study.settings.append(setting_guid(study.study_id, 1))

        self.state = SimulatorState()
        self.limiter = SlidingWindowLimit(rate_limit, rate_window_s)
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, frozenset[str]]] = {}
        self._revisions: dict[tuple[int, date], int] = {}
        self._missing: set[tuple[int, date]] = set()
        self.tokens_issued = 0
        self.app = self._build_app()
        self._server = SimulatorServer(self.app, port=port)

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._server.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/connect/token"

    def start(self) -> CentrePointSimulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> CentrePointSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls --------------------------------------------------------------------
    def recompute(self, subject_id: int, day: date) -> None:
        """Play "a later upload changed this day": new numbers and a new record id."""
        with self._lock:
            self._revisions[(subject_id, day)] = self._revisions.get((subject_id, day), 0) + 1

    def remove_day(self, subject_id: int, day: date) -> None:
        """Make a local day have no record at all (device not worn or not uploaded yet)."""
        with self._lock:
            self._missing.add((subject_id, day))

    def expire_tokens(self) -> None:
        """Invalidate every issued token now (the next API call gets a 401)."""
        with self._lock:
            self._tokens.clear()

    def settings_for(self, subject_id: int) -> list[str]:
        subject = self.subjects[subject_id]
        study_settings = self.studies[subject.study_id].settings
        return list(study_settings) if subject_id in self.dual_setting_subjects else study_settings[:1]

    # --- data -----------------------------------------------------------------------------
    def written_date(self, subject_id: int, day: date) -> str:
        """The ``date`` of the subject's local day, as this simulator's ``date_reading`` writes it."""
        if self.date_reading == "local_date":
            return f"{day.isoformat()}T00:00:00+00:00"
        return _iso_utc(datetime.combine(day, dtime(0), ZoneInfo(self.subjects[subject_id].time_zone)))

    def local_days(self, subject_id: int) -> list[date]:
        """Every local day the subject has a daily statistic for (per setting)."""
        subject = self.subjects[subject_id]
        last = min(self.data_end, subject.last_day) if subject.last_day else self.data_end
        days, day = [], subject.first_day
        while day <= last:
            if (subject_id, day) not in self._missing:
                days.append(day)
            day += timedelta(days=1)
        return days

    def daily_statistic(self, subject_id: int, day: date, setting_index: int) -> dict[str, Any]:
        """One DailyStatistics item, shaped like the documentation's example."""
        subject = self.subjects[subject_id]
        study = self.studies[subject.study_id]
        setting = self.settings_for(subject_id)[setting_index]
        revision = self._revisions.get((subject_id, day), 0)
        tz = ZoneInfo(subject.time_zone)
        midnight = datetime.combine(day, dtime(0), tz)
        # Real instants: a DST day has 1380 or 1500 minutes, and a midnight that does not exist
        # (zones that change at 00:00) starts the day at the first instant that does.
        start_utc = midnight.astimezone(timezone.utc)
        day_minutes = int((datetime.combine(day + timedelta(days=1), dtime(0), tz).astimezone(timezone.utc)
                           - start_utc).total_seconds() // 60)

        def u(name: str) -> float:  # not seeded by revision: a recomputation adds to the day
            return _unit(subject_id, day, setting_index, name)

        # Data covers the whole day once it is over; the last day (today) is still partial.
        covered = day_minutes if day < self.data_end else 480 + int(400 * u("covered"))
        wear = float(min(round(420 + 560 * u("wear") + 40 * revision + 25 * setting_index), covered - 60))
        sleep = float(min(round(360 + 120 * u("sleep")), covered))
        non_wear = covered - wear
        first = start_utc.astimezone(tz)  # epochs are 60 s; "last" is the start of the last one
        last = (start_utc + timedelta(minutes=covered - 1)).astimezone(tz)
        axis = [int(wear * (150 + 300 * u(f"axis{a}"))) for a in "XYZ"]
        vm = sum(c * c for c in axis) ** 0.5
        record: dict[str, Any] = {
            "id": subject_id * 10_000_000 + (day - date(2020, 1, 1)).days * 100 + setting_index * 50 + revision,
            "studyId": subject.study_id,
            "dailyStatisticsSettingId": setting,
            "subjectId": subject_id,
            "date": self.written_date(subject_id, day),
            "siteId": subject.study_id * 10 + 1,
            "activityMonitorSerials": [f"TAS1F{subject_id:08d}"],
            "epochAggregation": {
                "wearMinutes": wear,
                "nonWearMinutes": non_wear,
                "sleepMinutes": sleep,
                "awakeMinutes": covered - sleep,
                "wearAwakeMinutes": max(wear - sleep, 0.0),
                "wearSleepMinutes": min(sleep, wear),
                "totalNonFilteredMinutes": float(covered),
                "totalNonFilteredAxisXCounts": axis[0],
                "totalNonFilteredAxisYCounts": axis[1],
                "totalNonFilteredAxisZCounts": axis[2],
                "wearFilteredAxisXCounts": axis[0],
                "wearFilteredAxisYCounts": axis[1],
                "wearFilteredAxisZCounts": axis[2],
                "totalNonFilteredVectorMagnitude": vm,
                "wearFilteredVectorMagnitude": vm,
                "firstEpochDateTimeUtc": _iso_utc(first),
                "lastEpochDateTimeUtc": _iso_utc(last),
                # The real API suffixes local times with +00:00 too; clients must not trust it.
                "firstEpochDateTimeLocal": first.replace(tzinfo=None).isoformat() + "+00:00",
                "lastEpochDateTimeLocal": last.replace(tzinfo=None).isoformat() + "+00:00",
            },
            "firstEpochDateTimeUtc": _iso_utc(first),
            "lastEpochDateTimeUtc": _iso_utc(last),
            "firstEpochDateTimeLocal": first.replace(tzinfo=None).isoformat() + "+00:00",
            "lastEpochDateTimeLocal": last.replace(tzinfo=None).isoformat() + "+00:00",
        }
        if not study.minimal:
            seconds = wear * 60
            sedentary = round(seconds * (0.55 + 0.15 * u("sed")))
            light = round((seconds - sedentary) * 0.7)
            moderate = round((seconds - sedentary - light) * 0.8)
            vigorous = round(seconds - sedentary - light - moderate)
            if setting_index == 0:
                prefix = "wearFilteredVM"
                record["crouterAggregations"] = [{
                    f"{prefix}Sedentary": sedentary, f"{prefix}Light": light, f"{prefix}Moderate": moderate,
                    f"{prefix}Vigorous": vigorous, f"{prefix}MVPA": moderate + vigorous,
                }]
            else:  # the second setting uses another cut-point algorithm
                record["freedsonAggregations"] = [{
                    "wearFilteredVASedentary": sedentary, "wearFilteredVALight": light,
                    "wearFilteredVAModerate": moderate, "wearFilteredVAVigorous": vigorous,
                    "wearFilteredVAVeryVigorous": 0,
                }]
            steps = int(wear * (6 + 8 * u("steps")))
            record["mavmAggregation"] = {
                "nonFilteredSteps": steps, "wearFilteredSteps": steps,
                "wearAwakeFilteredSteps": steps, "wearSleepFilteredSteps": 0,
            }
            mets = 1.2 + 0.8 * u("mets")
            record["hildebrandMetCalorieAggregation"] = {
                "nonFilteredMets": mets * 1440, "wearMets": mets * wear, "wearAwakeMets": mets * (wear - sleep),
                "nonFilteredMetsAverage": mets, "wearMetsAverage": mets, "wearAwakeMetsAverage": mets,
                "nonFilteredCalories": 1800 * mets, "wearCalories": 1200 * mets, "wearAwakeCalories": 1000 * mets,
            }
        record.update(self.extra_fields)
        return record

    def daily_statistics(
        self, subject_id: int, from_date: date | None, to_date: date | None, setting: str | None
    ) -> list[dict[str, Any]]:
        """Records filtered as the simulated API filters them: on the calendar date of ``date`` as written."""
        out = []
        with self._lock:
            settings_ = self.settings_for(subject_id)
            for day in self.local_days(subject_id):
                written = date.fromisoformat(self.written_date(subject_id, day)[:10])
                if (from_date and written < from_date) or (to_date and written > to_date):
                    continue
                for index, guid in enumerate(settings_):
                    if setting is None or guid.lower() == setting.lower():
                        out.append(self.daily_statistic(subject_id, day, index))
        return out

    # --- HTTP -----------------------------------------------------------------------------
    def _build_app(self) -> FastAPI:
        app = make_app("CentrePoint simulator", self.state)

        @app.post("/_sim/recompute")
        async def _recompute(body: dict[str, Any]) -> dict[str, str]:
            self.recompute(int(body["subject_id"]), date.fromisoformat(body["date"]))
            return {"status": "recomputed"}

        @app.post("/_sim/rate_limit")
        async def _rate_limit(body: dict[str, Any]) -> dict[str, Any]:
            """``{"limit": n, "window_s": s}`` (either may be left out): the per-IP budget from now on."""
            self.limiter.set(body.get("limit"), body.get("window_s"))
            return {"limit": self.limiter.limit, "window_s": self.limiter.window_s}

        @app.post("/connect/token")
        async def token(request: Request) -> Response:
            # Parsed by hand: starlette's form parser needs python-multipart, not a dependency.
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if form.get("grant_type") != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                return JSONResponse({"error": "invalid_client"}, status_code=400)
            scopes = frozenset(str(form.get("scope") or "").split())
            if not scopes or not scopes <= set(SCOPES):
                return JSONResponse({"error": "invalid_scope"}, status_code=400)
            access_token = secrets.token_urlsafe(32)
            with self._lock:
                self._tokens[access_token] = (time.monotonic() + self.token_expires_in, scopes)
                self.tokens_issued += 1
            return JSONResponse(
                {"access_token": access_token, "expires_in": self.token_expires_in, "token_type": "Bearer",
                 "scope": " ".join(sorted(scopes))}
            )

        def guard(request: Request, scope: str) -> Response | None:
            """Auth then rate limit, in that order, like a gateway in front of the API."""
            header = request.headers.get("authorization", "")
            token_ = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
            with self._lock:
                entry = self._tokens.get(token_)
                if entry is not None and entry[0] <= time.monotonic():
                    del self._tokens[token_]
                    entry = None
            if entry is None:
                return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if scope not in entry[1]:
                return PlainTextResponse(f"The access token does not grant the {scope} scope.", status_code=403)
            allowed, reset = self.limiter.hit(request.client.host if request.client else "client")
            if not allowed:
                return PlainTextResponse(
                    "API calls quota exceeded! maximum admitted requests reached.", status_code=429,
                    headers={"Retry-After": str(reset)},
                )
            return None

        def paging(request: Request) -> tuple[int, int] | Response:
            try:
                offset = int(request.query_params.get("offset", "0"))
                limit = int(request.query_params.get("limit", "100"))
            except ValueError:
                return PlainTextResponse("offset and limit must be integers.", status_code=400)
            if not 1 <= limit <= 100:
                return PlainTextResponse("The field limit must be between 1 and 100.", status_code=400)
            if offset < 0:
                return PlainTextResponse("The field offset must be 0 or greater.", status_code=400)
            return offset, limit

        def page(request: Request, items: list[dict[str, Any]], offset: int, limit: int) -> JSONResponse:
            base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
            links: dict[str, str] = {}
            if offset + limit < len(items):
                links["next"] = f"{base}?offset={offset + limit}&limit={limit}"
            if offset > 0:
                links["prev"] = f"{base}?offset={max(offset - limit, 0)}&limit={limit}"
            return JSONResponse({"items": items[offset:offset + limit], "links": links, "totalCount": len(items),
                                 "limit": limit, "offset": offset})

        def study_json(study: SimStudy) -> dict[str, Any]:
            return {"id": study.study_id, "name": f"Simulated study {study.study_id}",
                    "organizationName": "wearable_assets simulator", "createdDateTime": "2025-06-01T00:00:00Z",
                    "studyStatus": "Active", "defaultWearPosition": "Left Wrist", "wearPositions": ["Left Wrist"],
                    "monitorDataCollectionMode": "Epoch+Raw"}

        def subject_json(subject: SimSubject) -> dict[str, Any]:
            return {"id": subject.subject_id, "studyId": subject.study_id, "siteId": subject.study_id * 10 + 1,
                    "siteIdentifier": "SIM", "subjectIdentifier": subject.identifier, "timezone": subject.time_zone,
                    "wearPosition": "Left Wrist", "assignmentStatus": "Assigned",
                    "assignmentId": subject.subject_id + 700000}

        def find_study(study_id: int) -> SimStudy | Response:
            study = self.studies.get(study_id)
            return study if study else PlainTextResponse(f"Study {study_id} was not found.", status_code=404)

        def find_subject(study_id: int, subject_id: int) -> SimSubject | Response:
            subject = self.subjects.get(subject_id)
            if subject is None or subject.study_id != study_id:
                return PlainTextResponse(f"Subject {subject_id} was not found in study {study_id}.", status_code=404)
            return subject

        @app.get("/centrepoint/v3/Studies")
        async def studies(request: Request) -> Response:
            if (denied := guard(request, "CentrePoint")) is not None:
                return denied
            paged = paging(request)
            if isinstance(paged, Response):
                return paged
            return page(request, [study_json(s) for s in self.studies.values()], *paged)

        @app.get("/centrepoint/v3/Studies/{study_id}")
        async def study(request: Request, study_id: int) -> Response:
            if (denied := guard(request, "CentrePoint")) is not None:
                return denied
            found = find_study(study_id)
            return found if isinstance(found, Response) else JSONResponse(study_json(found))

        @app.get("/centrepoint/v3/Studies/{study_id}/Subjects")
        async def subjects(request: Request, study_id: int) -> Response:
            if (denied := guard(request, "CentrePoint")) is not None:
                return denied
            found = find_study(study_id)
            if isinstance(found, Response):
                return found
            paged = paging(request)
            if isinstance(paged, Response):
                return paged
            items = [subject_json(s) for s in self.subjects.values() if s.study_id == study_id]
            return page(request, items, *paged)

        @app.get("/centrepoint/v3/Studies/{study_id}/Subjects/{subject_id}")
        async def subject(request: Request, study_id: int, subject_id: int) -> Response:
            if (denied := guard(request, "CentrePoint")) is not None:
                return denied
            found = find_subject(study_id, subject_id)
            return found if isinstance(found, Response) else JSONResponse(subject_json(found))

        @app.get("/analytics/v3/Studies/{study_id}/Subjects/{subject_id}/DailyStatistics")
        async def daily(request: Request, study_id: int, subject_id: int) -> Response:
            if (denied := guard(request, "Analytics")) is not None:
                return denied
            found = find_subject(study_id, subject_id)
            if isinstance(found, Response):
                return found
            paged = paging(request)
            if isinstance(paged, Response):
                return paged
            q = request.query_params
            bounds: list[date | None] = []
            for name in ("fromDate", "toDate"):
                text = q.get(name)
                try:
                    bounds.append(date.fromisoformat(text[:10]) if text else None)
                except ValueError:
                    return PlainTextResponse(f"The value '{text}' is not valid for {name}.", status_code=400)
            setting = q.get("dailyStatisticsSettingId")
            if setting is not None:
                try:
                    uuid.UUID(setting)
                except ValueError:
                    return PlainTextResponse(
                        f"The value '{setting}' is not valid for dailyStatisticsSettingId.", status_code=400
                    )
            items = self.daily_statistics(subject_id, bounds[0], bounds[1], setting)
            return page(request, items, *paged)

        return app


def main(argv: list[str] | None = None) -> None:
    """``python -m wearable_assets_dev.simulators.centrepoint``: serve until Ctrl-C (for demos)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--roster", default=None, help="roster CSV (default: the demo roster)")
    parser.add_argument("--data-end", type=date.fromisoformat, default=None, help="last day with data")
    parser.add_argument("--token-expires-in", type=int, default=3600)
    parser.add_argument("--date-reading", choices=DATE_READINGS, default="utc_instant",
                        help="how DailyStatistics 'date' is written (the documentation allows both)")
    args = parser.parse_args(argv)
    sim = CentrePointSimulator(args.roster, port=args.port, data_end=args.data_end,
                               token_expires_in=args.token_expires_in, date_reading=args.date_reading).start()
    print("CentrePoint simulator running; point the pipeline at it with:")
    print(f"  export CENTREPOINT_BASE_URL={sim.url} CENTREPOINT_TOKEN_URL={sim.token_url}")
    print(f"  export CENTREPOINT_CLIENT_ID={sim.client_id} CENTREPOINT_CLIENT_SECRET={sim.client_secret}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
