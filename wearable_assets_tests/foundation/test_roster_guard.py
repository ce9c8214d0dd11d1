"""A roster typo must never silently unlink devices.

Against the real database and a Dagster instance: a bad header or row is refused naming the
column or line and changes nothing; a change that would unlink the device of a participant who
already has data is refused unless forced; the roster sensor fails its tick (and applies
nothing) on either, and on a partition key the roster does not know; ``roster validate`` and
``roster sync`` exit 1 with one line per problem.
"""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from wearable_assets import settings
from wearable_assets.participants.plan import RosterRefused, sync_roster
from wearable_assets.participants.sensors import roster_sensor
from wearable_assets.participants.sync import apply_to_instance
from wearable_assets.partitions import PARTICIPANTS_PARTITION_NAME
from wearable_assets.roster import RosterError, load_roster
from wearable_assets.storage.resources import TimescaleResource

HEADER = ("participant_id,study_id,time_zone,enrolled_from,enrolled_to,fitbit_provider,fitbit_user_id,"
          "centrepoint_study_id,centrepoint_subject_id")
P1 = "P1,S1,Europe/London,2026-01-01,,google_health,fb-1,,"
P2 = "P2,S1,Asia/Tokyo,2026-01-01,,,,1001,77"
P3 = "P3,S1,Europe/Paris,2026-01-01,,fitbit_legacy,,,"
TODAY = date(2026, 11, 20)
CLI = "/work/main/.venv/bin/wearable-assets"


def write(tmp_path: Path, *lines: str, header: str = HEADER, name: str = "roster.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "\n".join([header, *lines, ""]).encode())
    return path


def participants_table(timescale: TimescaleResource) -> list[tuple]:
    return timescale.fetch(
        "SELECT participant_id, study_id, time_zone, enrolled_from, enrolled_to, fitbit_provider, fitbit_user_id, "
        "centrepoint_study_id, centrepoint_subject_id, in_roster, updated_at FROM wearables.participants ORDER BY 1"
    )


def give_data(timescale: TimescaleResource, *, ingested: tuple[str, ...] = (), tokens: tuple[str, ...] = ()) -> None:
    """Mark participants as already ingesting: an ingest_status row, or an OAuth token."""
    for pid in ingested:
        timescale.execute(
            "INSERT INTO wearables.ingest_status (participant_id, local_date, source, status) "
            "VALUES (%s, '2026-11-01', 'centrepoint', 'ok')", (pid,)
        )
    for pid in tokens:
        timescale.execute(
            "INSERT INTO wearables.oauth_tokens (participant_id, provider) VALUES (%s, 'google_health')", (pid,)
        )


def start(timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """P1 (Google Health), P2 (CentrePoint) and P3 (legacy Fitbit) synced; P1 and P2 have data, P3 none."""
    roster = load_roster(write(tmp_path, P1, P2, P3, name="first.csv"))
    plan = sync_roster(timescale, roster, [], TODAY)
    apply_to_instance(instance, plan.partitions)
    give_data(timescale, ingested=("P2",), tokens=("P1",))


def run_sensor(instance: dg.DagsterInstance, timescale: TimescaleResource) -> dg.SensorResult | dg.SkipReason:
    return roster_sensor(dg.build_sensor_context(instance=instance), timescale=timescale)


def run_cli(*args: str, dagster_home: str | None = None, dsn: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(settings.REPO_ROOT)}
    if dagster_home:
        env["DAGSTER_HOME"] = dagster_home
    if dsn:
        env[settings.TIMESCALE_DSN_ENV] = dsn
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


# -- the file ---------------------------------------------------------------------------------------


def test_misspelt_header_is_refused_naming_the_column_and_the_nearest_known_one(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(timescale, instance, tmp_path)
    before = participants_table(timescale)
    typo = write(tmp_path, P1, P2, P3, header=HEADER.replace("fitbit_provider", "fitbit_provder"))
    with pytest.raises(RosterError) as err:
        load_roster(typo)
    assert err.value.problems == [
        "roster.csv header: unknown column 'fitbit_provder' (did you mean 'fitbit_provider'?); rename or remove it"
    ]
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(typo))
    with pytest.raises(RosterError, match="roster not applied: roster.csv header: unknown column 'fitbit_provder'"):
        run_sensor(instance, timescale)
    assert participants_table(timescale) == before
    assert timescale.fetch("SELECT count(*) FROM wearables.participants WHERE fitbit_provider IS NULL") == [(1,)]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER + ",study_id", "column 'study_id' appears twice (columns 2 and 10)"),
        (HEADER.replace("time_zone", "timezone"), "unknown column 'timezone' (did you mean 'time_zone'?)"),
        (HEADER.replace("time_zone", "timezone"), "missing required column(s) time_zone"),
        (HEADER + ",", "column 10 has no name"),
        (HEADER + ",notes", "unknown column 'notes' (known columns: participant_id, study_id"),
    ],
)
def test_header_problems_are_named(tmp_path: Path, header: str, expected: str) -> None:
    with pytest.raises(RosterError) as err:
        load_roster(write(tmp_path, P1 + ",x", header=header))
    assert any(expected in problem for problem in err.value.problems), err.value.problems


def test_every_bad_row_is_listed_and_surplus_cells_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, P1, "a|b,S1,Europe/London,2026-01-01,,,,,", P2 + ",surplus", "P4,S1,Mars/Base,2026-01-01,,,,,")
    with pytest.raises(RosterError) as err:
        load_roster(path)
    lines = [problem.split(":")[0] for problem in err.value.problems]
    assert lines == ["roster.csv line 3", "roster.csv line 4", "roster.csv line 5"]
    assert "more cell(s) than the header has columns" in err.value.problems[1]
    assert str(err.value).endswith("(and 2 more problems: `wearable-assets roster validate` lists them all)")


def test_utf8_byte_order_mark_is_accepted(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, P1, P2, bom=True)
    assert [p.participant_id for p in load_roster(path)] == ["P1", "P2"]
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(path))
    result = run_sensor(instance, timescale)
    assert isinstance(result, dg.SensorResult)
    assert result.skip_reason is not None
    assert result.skip_reason.skip_message == "roster applied: 2 added (P1, P2), 0 changed, 0 removed; partitions +2 -0"
    assert [r[0] for r in participants_table(timescale)] == ["P1", "P2"]


def test_a_file_that_is_not_utf8_is_refused_plainly(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes((HEADER + "\nP1,S1,Europe/Z\xfcrich,2026-01-01,,,,,\n").encode("latin-1"))
    with pytest.raises(RosterError, match="roster.csv: not UTF-8 text .* save the file as CSV UTF-8"):
        load_roster(path)


# -- the unlink rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # fitbit_provider emptied for P1, who has a Google Health token
        ((P1.replace("google_health", ""), P2, P3),
         "roster.csv line 2: participant P1 fitbit_provider would change from 'google_health' to empty"),
        ((P1.replace("fb-1", "fb-9"), P2, P3),
         "roster.csv line 2: participant P1 fitbit_user_id would change from 'fb-1' to 'fb-9'"),
        ((P1, P2.replace("1001,77", ",,"), P3),
         ("participant P2 centrepoint_study_id would change from '1001' to empty; centrepoint_subject_id would "
          "change from '77' to empty, but P2 already has data (1 ingest record)")),
        ((P1, P2.replace(",77", ",78"), P3),
         ("roster.csv line 3: participant P2 centrepoint_subject_id would change from '77' to '78', but P2 already "
          "has data (1 ingest record): this unlinks their device")),
        ((P1, P3), "roster.csv: participant P2 is no longer listed but already has data (1 ingest record)"),
    ],
)
def test_unlinking_a_participant_with_data_is_refused_then_applied_with_force(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path,
    lines: tuple[str, ...], expected: str,
) -> None:
    start(timescale, instance, tmp_path)
    before = participants_table(timescale)
    roster = load_roster(write(tmp_path, *lines))
    partitions = instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
    with pytest.raises(RosterRefused) as err:
        sync_roster(timescale, roster, partitions, TODAY, source="roster.csv")
    assert len(err.value.problems) == 1 and expected in err.value.problems[0], err.value.problems
    assert "`wearable-assets roster sync --force`" in err.value.problems[0]
    assert participants_table(timescale) == before

    plan = sync_roster(timescale, roster, partitions, TODAY, force=True, source="roster.csv")
    assert plan.refusals == err.value.problems
    after = {r[0]: r for r in participants_table(timescale)}
    for p in roster:
        assert after[p.participant_id][:9] == tuple(p.as_row().values())
    assert sorted(pid for pid, r in after.items() if not r[9]) == sorted({"P1", "P2", "P3"} - {p.participant_id for p in roster})


def test_participants_without_data_and_new_devices_change_freely(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    start(timescale, instance, tmp_path)
    # P3 has no data: its device may be unlinked; P1 (with data) may gain a CentrePoint account;
    # P4 is new; P2 keeps its links and moves time zone.
    roster = load_roster(write(
        tmp_path, "P1,S1,Europe/London,2026-01-01,,google_health,fb-1,2002,5", P2.replace("Asia/Tokyo", "Asia/Seoul"),
        P3.replace("fitbit_legacy", ""), "P4,S1,Europe/London,2026-12-01,,,,,",
    ))
    plan = sync_roster(timescale, roster, instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME), TODAY)
    assert plan.refusals == []
    assert (plan.added, plan.changed, plan.removed) == (["P4"], ["P1", "P2", "P3"], [])
    assert plan.partitions.add == [] and plan.partitions.remove == []  # P4's enrolment starts later
    rows = {r[0]: r for r in participants_table(timescale)}
    assert rows["P1"][7:9] == ("2002", "5") and rows["P3"][5:7] == (None, None) and rows["P2"][2] == "Asia/Seoul"


# -- the sensor -------------------------------------------------------------------------------------


def test_sensor_fails_its_tick_on_a_refused_unlink_and_applies_nothing(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(timescale, instance, tmp_path)
    before = participants_table(timescale)
    partitions = instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)
    # P1's Fitbit id emptied (it would default to the participant id) and P2 dropped; P4 added.
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(write(
        tmp_path, P1.replace("fb-1", ""), P3, "P4,S1,Europe/London,2026-01-01,,,,,"
    )))
    for _ in range(3):  # every tick fails the same way until the file is fixed
        with pytest.raises(RosterError) as err:
            run_sensor(instance, timescale)
        assert str(err.value).startswith(
            "roster not applied: roster.csv line 2: participant P1 fitbit_user_id would change from 'fb-1' to 'P1'"
        )
        assert str(err.value).endswith("(and 1 more problem: `wearable-assets roster validate` lists them all)")
        assert "participant P2 is no longer listed" in err.value.problems[1]
        assert participants_table(timescale) == before
        assert instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME) == partitions

    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(write(tmp_path, P1, P2, P3, "P4,S1,Europe/London,2026-01-01,,,,,")))
    result = run_sensor(instance, timescale)
    assert isinstance(result, dg.SensorResult) and result.skip_reason is not None
    assert result.skip_reason.skip_message == "roster applied: 1 added (P4), 0 changed, 0 removed; partitions +1 -0"
    assert [list(r.partition_keys) for r in result.dynamic_partitions_requests] == [["P4"]]


def test_sensor_fails_on_a_missing_roster_file(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(tmp_path / "nowhere.csv"))
    with pytest.raises(RosterError, match="roster not applied: cannot read .*nowhere.csv: No such file"):
        run_sensor(instance, timescale)
    assert participants_table(timescale) == []


@pytest.mark.parametrize(
    ("key", "reason"),
    [("bad|id", "is not a valid participant id (participant id 'bad|id' is not allowed"), ("P9", "is not in roster.csv")],
)
def test_sensor_reports_a_partition_key_added_by_hand(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    key: str, reason: str,
) -> None:
    start(timescale, instance, tmp_path)
    instance.add_dynamic_partitions(PARTICIPANTS_PARTITION_NAME, [key])  # what "Add a partition" in the UI does
    before = participants_table(timescale)
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(write(tmp_path, P1, P2, P3)))
    with pytest.raises(RosterError) as err:
        run_sensor(instance, timescale)
    assert str(err.value).startswith(f"roster not applied: partition key {key!r} of the Dagster 'participants' "
                                     f"partitions {reason}")
    assert "remove the key with `wearable-assets roster sync --force`" in str(err.value)
    assert key in instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME)  # kept until someone decides
    assert participants_table(timescale) == before

    plan = sync_roster(timescale, load_roster(settings.roster_path()),
                       instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME), TODAY, force=True)
    apply_to_instance(instance, plan.partitions)
    assert instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME) == ["P1", "P2", "P3"]
    assert isinstance(run_sensor(instance, timescale), dg.SkipReason)


def test_sensor_removes_a_participant_without_data_and_says_so(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(timescale, instance, tmp_path)
    monkeypatch.setenv(settings.ROSTER_PATH_ENV, str(write(tmp_path, P1, P2)))
    result = run_sensor(instance, timescale)
    assert isinstance(result, dg.SensorResult) and result.skip_reason is not None
    assert result.skip_reason.skip_message == "roster applied: 0 added, 0 changed, 1 removed (P3); partitions +0 -1"
    assert [type(r).__name__ for r in result.dynamic_partitions_requests] == ["DeleteDynamicPartitionsRequest"]
    assert timescale.fetch("SELECT participant_id FROM wearables.participants WHERE NOT in_roster") == [("P3",)]


# -- the command line -------------------------------------------------------------------------------


def test_validate_and_sync_commands(
    timescale: TimescaleResource, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    start(timescale, instance, tmp_path)
    home = instance.root_directory
    typo = write(tmp_path, P1, P2, P3, header=HEADER.replace("fitbit_provider", "fitbit_provder"), name="typo.csv")
    out = run_cli("roster", "validate", str(typo), dagster_home=home, dsn=timescale.dsn)
    assert out.returncode == 1, out
    assert out.stdout.splitlines() == [
        "typo.csv header: unknown column 'fitbit_provder' (did you mean 'fitbit_provider'?); rename or remove it"
    ]
    assert "Traceback" not in out.stderr and "1 problem: fix the roster file" in out.stderr

    unlink = write(tmp_path, P1.replace("google_health", "fitbit_legacy"), P3, name="unlink.csv")
    before = participants_table(timescale)
    out = run_cli("roster", "validate", str(unlink), dagster_home=home, dsn=timescale.dsn)
    assert out.returncode == 1, out
    assert [line.split(" would ")[0].split(" is no ")[0] for line in out.stdout.splitlines()] == [
        "unlink.csv line 2: participant P1 fitbit_provider", "unlink.csv: participant P2"]
    assert "2 problems: fix the roster, or apply it with `wearable-assets roster sync --force`" in out.stderr
    out = run_cli("roster", "sync", "--roster", str(unlink), "--today", "2026-11-20", dagster_home=home,
                  dsn=timescale.dsn)
    assert out.returncode == 1 and "nothing applied" in out.stderr and "Traceback" not in out.stderr, out
    assert participants_table(timescale) == before

    out = run_cli("roster", "sync", "--roster", str(unlink), "--today", "2026-11-20", "--force",
                  dagster_home=home, dsn=timescale.dsn)
    assert out.returncode == 0, out
    lines = out.stdout.splitlines()
    assert lines[0].startswith("forced: unlink.csv line 2: participant P1 fitbit_provider would change")
    assert lines[1].startswith("forced: unlink.csv: participant P2 is no longer listed")
    assert lines[2] == (f"roster {unlink}: 2 participants; 0 added, 1 changed (P1), 1 removed (P2); "
                        "partitions +0 -1 = 2")
    assert timescale.fetch("SELECT participant_id, fitbit_provider, in_roster FROM wearables.participants "
                           "ORDER BY 1") == [("P1", "fitbit_legacy", True), ("P2", None, False),
                                             ("P3", "fitbit_legacy", True)]
    assert instance.get_dynamic_partitions(PARTICIPANTS_PARTITION_NAME) == ["P1", "P3"]

    out = run_cli("roster", "validate", str(unlink), "--today", "2026-11-20", dagster_home=home, dsn=timescale.dsn)
    assert out.returncode == 0, out
    assert out.stdout.strip() == (f"{unlink}: OK, 2 participants; applying it would make 0 added, 0 changed, "
                                  "0 removed; partitions +0 -0")

    out = run_cli("roster", "validate", str(unlink), dagster_home=home,
                  dsn="postgresql://wearables@127.0.0.1:9/wearables")
    assert out.returncode == 0, out
    assert "not reachable" in out.stderr and "checked the file only" in out.stderr
    assert out.stdout.strip() == f"{unlink}: file OK, 2 participants"


def test_concurrent_syncs_apply_each_change_once(timescale: TimescaleResource, tmp_path: Path) -> None:
    """A sensor tick and a CLI sync at the same moment: the checks and the write of one sync see the
    rows of the other (one advisory lock), so a change is reported applied exactly once and a
    refusal is never bypassed by a sync that read the rows before the other wrote them."""
    sync_roster(timescale, load_roster(write(tmp_path, P1, P2, P3, name="first.csv")), [], TODAY)
    give_data(timescale, ingested=("P2",))
    rows = [P1, P2, P3]
    for n in range(4, 24):  # 20 rounds, each adding one participant from two syncs at once
        rows.append(f"P{n},S1,Europe/London,2026-01-01,,,,,")
        roster = load_roster(write(tmp_path, *rows, name=f"round{n}.csv"))
        barrier = threading.Barrier(2)

        def sync(roster: list = roster, barrier: threading.Barrier = barrier) -> list[str]:
            barrier.wait()
            return sync_roster(timescale, roster, [], TODAY).added

        with ThreadPoolExecutor(2) as pool:
            added = [f.result() for f in [pool.submit(sync), pool.submit(sync)]]
        assert sorted(added) == [[], [f"P{n}"]], (n, added)
    assert timescale.fetch("SELECT count(*) FROM wearables.participants WHERE in_roster") == [(23,)]
