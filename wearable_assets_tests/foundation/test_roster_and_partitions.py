"""Roster validation, partition keys, and syncing the roster into the database and Dagster."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from wearable_assets import settings
from wearable_assets.participant_day import InvalidParticipantId, ParticipantDay, validate_participant_id
from wearable_assets.participants.sensors import roster_sensor
from wearable_assets.participants.sync import apply_to_instance, partition_changes, upsert_participants
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME, participant_day_partitions, to_multi_key
from wearable_assets.roster import RosterError, load_roster
from wearable_assets.storage.resources import TimescaleResource

HEADER = (
    "participant_id,study_id,time_zone,enrolled_from,enrolled_to,fitbit_provider,fitbit_user_id,"
    "centrepoint_study_id,centrepoint_subject_id\n"
)


def write_roster(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_demo_roster_loads() -> None:
    roster = load_roster(settings.REPO_ROOT / "roster" / "demo_roster.csv")
    assert [p.participant_id for p in roster] == ["P001", "P002", "P003", "P004", "P005"]
    by_id = {p.participant_id: p for p in roster}
    assert by_id["P002"].providers == ("google_health", "centrepoint")
    assert by_id["P003"].enrolled_on(date(2026, 11, 1)) and not by_id["P003"].enrolled_on(date(2026, 11, 2))


@pytest.mark.parametrize("bad_id", ["a|b", "\"a,b\"", "a...b", "", "x" * 65, "P 1", "P/1"])
def test_roster_rejects_ids_that_break_partition_keys(tmp_path: Path, bad_id: str) -> None:
    path = write_roster(tmp_path, f"{bad_id},S1,Europe/London,2026-01-01,,google_health,,,")
    with pytest.raises(RosterError) as err:
        load_roster(path)
    message = str(err.value)
    assert "roster.csv line 2" in message and "A-Z a-z 0-9 _ -" in message


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("P1,S1,Mars/Olympus,2026-01-01,,,,,", "not an IANA zone"),
        ("P1,S1,Europe/London,01/02/2026,,,,,", "not an ISO date"),
        ("P1,S1,Europe/London,2026-02-01,2026-01-01,,,,", "before enrolled_from"),
        ("P1,S1,Europe/London,2026-01-01,,garmin,,,", "fitbit_provider 'garmin'"),
        ("P1,S1,Europe/London,2026-01-01,,,,1001,", "go together"),
        ("P1,,Europe/London,2026-01-01,,,,,", "study_id is empty"),
    ],
)
def test_roster_errors_say_what_to_fix(tmp_path: Path, row: str, expected: str) -> None:
    with pytest.raises(RosterError, match=expected):
        load_roster(write_roster(tmp_path, row))


def test_roster_rejects_duplicates(tmp_path: Path) -> None:
    row = "P1,S1,Europe/London,2026-01-01,,,,,"
    with pytest.raises(RosterError, match="listed twice"):
        load_roster(write_roster(tmp_path, row, row))


def test_partition_keys_round_trip(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, ["P001", "P-2_b"])
    keys = participant_day_partitions.get_partition_keys(dynamic_partitions_store=instance)
    assert "2026-11-01|P001" in keys and "2026-11-01|P-2_b" in keys
    for key in ("2026-11-01|P001", "2026-11-01|P-2_b"):
        pday = ParticipantDay.from_key(key)
        assert pday.key == key
        parsed = participant_day_partitions.get_partition_key_from_str(key)
        assert parsed.keys_by_dimension == {"date": pday.day.isoformat(), "participant": pday.participant_id}
        assert to_multi_key(pday) == parsed


def test_partition_key_parse_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD\\|participant"):
        ParticipantDay.from_key("P001")
    with pytest.raises(ValueError, match="not an ISO date"):
        ParticipantDay.from_key("2026-13-01|P001")
    with pytest.raises(InvalidParticipantId):
        validate_participant_id("a|b")


@pytest.mark.parametrize("bad_id", ["P1\n", "P1 ", " P1", "P1\r\n", "P1\t"])
def test_ids_with_trailing_or_leading_whitespace_are_rejected(bad_id: str) -> None:
    # A "$" anchor with re.match accepts "P1\n"; the whole id must match.
    with pytest.raises(InvalidParticipantId) as err:
        validate_participant_id(bad_id)
    message = str(err.value)
    assert repr(bad_id) in message and "A-Z a-z 0-9 _ -" in message
    with pytest.raises(InvalidParticipantId, match="A-Z a-z 0-9 _ -"):
        ParticipantDay.from_key(f"2026-11-01|{bad_id}")
    assert validate_participant_id(bad_id.strip()) == "P1"


def test_roster_trims_cells_but_rejects_newline_inside_id(tmp_path: Path) -> None:
    # The roster trims whitespace around a cell (spreadsheet exports pad them) ...
    padded = load_roster(write_roster(tmp_path, " P1 ,S1,Europe/London,2026-01-01,,,,,"))
    assert [p.participant_id for p in padded] == ["P1"]
    # ... but a newline inside a quoted cell is part of the id and is refused with the row number.
    with pytest.raises(RosterError) as err:
        load_roster(write_roster(tmp_path, '"P1\nX",S1,Europe/London,2026-01-01,,,,,'))
    assert "roster.csv line 2" in str(err.value) and "A-Z a-z 0-9 _ -" in str(err.value)


def test_partition_changes_respect_enrolment_start(tmp_path: Path) -> None:
    roster = load_roster(write_roster(
        tmp_path,
        "P1,S1,Europe/London,2026-01-01,,,,,",
        "P2,S1,Europe/London,2026-12-01,,,,,",  # not enrolled yet
    ))
    changes = partition_changes(roster, existing=["P1", "OLD"], today=date(2026, 11, 22))
    assert changes.add == [] and changes.remove == ["OLD"]
    later = partition_changes(roster, existing=["P1"], today=date(2026, 12, 1))
    assert later.add == ["P2"]


def test_roster_sync_writes_database_and_flags_removed(timescale: TimescaleResource, tmp_path: Path) -> None:
    first = load_roster(write_roster(
        tmp_path, "P1,S1,Europe/London,2026-01-01,,google_health,,,", "P2,S1,Asia/Tokyo,2026-01-01,,,,1001,77"
    ))
    assert upsert_participants(timescale, first) == 2
    assert upsert_participants(timescale, first) == 0  # unchanged rows are not rewritten
    second = load_roster(write_roster(tmp_path, "P1,S1,Europe/Paris,2026-01-01,,google_health,,,"))
    assert upsert_participants(timescale, second) == 2  # P1 changed zone, P2 left the roster
    rows = timescale.fetch("SELECT participant_id, time_zone, in_roster, fitbit_user_id FROM wearables.participants ORDER BY 1")
    assert rows == [("P1", "Europe/Paris", True, "P1"), ("P2", "Asia/Tokyo", False, None)]


def test_roster_sensor_adds_and_removes_partitions(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GONE was in the roster (no data yet) and has left it: its partition goes, and the tick says so.
    upsert_participants(timescale, load_roster(write_roster(tmp_path, "GONE,S1,Europe/London,2026-01-01,,,,,")))
    instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, ["GONE"])
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(write_roster(tmp_path, "P1,S1,Europe/London,2026-01-01,,,,,")))
    result = roster_sensor(dg.build_sensor_context(instance=instance), timescale=timescale)
    assert isinstance(result, dg.SensorResult)
    requests = {type(r).__name__: list(r.partition_keys) for r in result.dynamic_partitions_requests}
    assert requests == {"AddDynamicPartitionsRequest": ["P1"], "DeleteDynamicPartitionsRequest": ["GONE"]}
    assert result.skip_reason is not None
    assert result.skip_reason.skip_message == (
        "roster applied: 1 added (P1), 0 changed, 1 removed (GONE); partitions +1 -1"
    )
    apply_to_instance(instance, partition_changes(load_roster(settings.roster_path()), ["GONE"], date.today()))
    assert instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME) == ["P1"]
    again = roster_sensor(dg.build_sensor_context(instance=instance), timescale=timescale)
    assert isinstance(again, dg.SkipReason) and again.skip_message == "roster unchanged (1 participants, 1 partitions)"


def test_roster_sensor_fails_and_keeps_partitions_when_roster_is_broken(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, ["P1"])
    upsert_participants(timescale, load_roster(write_roster(tmp_path, "P1,S1,Europe/London,2026-01-01,,,,,")))
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(write_roster(tmp_path, "a|b,S1,Europe/London,2026-01-01,,,,,")))
    with pytest.raises(RosterError, match="roster not applied: roster.csv line 2: participant id 'a|b'"):
        roster_sensor(dg.build_sensor_context(instance=instance), timescale=timescale)
    assert instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME) == ["P1"]
    assert timescale.fetch("SELECT participant_id, in_roster FROM wearables.participants") == [("P1", True)]
