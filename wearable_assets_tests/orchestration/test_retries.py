"""Steps retry through a database outage and only through one (``orchestration.retries``).

Real Dagster runs (``dg.materialize``) of an asset that writes through ``Timescale`` the way the
participant-day assets do; the outage is a DSN nobody listens on for the first attempts, then
the real database (a server that came back).
"""


import dagster as dg
import pytest
from psycopg.conninfo import make_conninfo

from wearable_assets.orchestration.retries import (
    RETRY_POLICY,
    is_transient,
    transient_database_errors,
)
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets.storage.timescale import Timescale
from wearable_assets_tests.test_cli import closed_port_dsn

#: The project's policy with no wait, so a test round takes a second.
FAST = dg.RetryPolicy(max_retries=RETRY_POLICY.max_retries)


def _run(dsn_for_attempt, attempts: list[int]) -> dg.ExecuteInProcessResult:  # type: ignore[no-untyped-def]
    @dg.asset(retry_policy=FAST)
    def writes_a_row(context: dg.AssetExecutionContext) -> None:
        attempts.append(context.retry_number)
        with transient_database_errors():
            Timescale(dsn_for_attempt(context.retry_number)).fetch("SELECT 1")

    return dg.materialize([writes_a_row], raise_on_error=False)


@pytest.mark.parametrize("outage_attempts", [1, 2, 3])
def test_a_step_retries_until_the_database_is_back(timescale: TimescaleResource, outage_attempts: int) -> None:
    down = closed_port_dsn()
    attempts: list[int] = []
    result = _run(lambda n: down if n < outage_attempts else timescale.dsn, attempts)
    assert result.success
    assert attempts == list(range(outage_attempts + 1))
    retried = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retried) == outage_attempts


def test_an_outage_longer_than_the_policy_fails_the_step() -> None:
    down = closed_port_dsn()
    attempts: list[int] = []
    result = _run(lambda n: down, attempts)
    assert not result.success
    assert attempts == list(range(FAST.max_retries + 1))


def test_a_refused_login_is_not_retried(timescale: TimescaleResource) -> None:
    """Waiting does not fix a wrong role or password: one attempt, then the step fails."""
    wrong = make_conninfo(timescale.dsn, user="nobody")
    attempts: list[int] = []
    result = _run(lambda n: wrong, attempts)
    assert not result.success
    assert attempts == [0]
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert 'role "nobody" does not exist' in failure.event_specific_data.error.message


def test_only_outages_count_as_transient(timescale: TimescaleResource) -> None:
    import psycopg

    with pytest.raises(psycopg.OperationalError) as down:
        Timescale(closed_port_dsn()).fetch("SELECT 1")
    assert is_transient(down.value)
    wrapped = RuntimeError("load failed")
    wrapped.__cause__ = down.value
    assert is_transient(wrapped)  # Dagster and dlt wrap the error
    with pytest.raises(psycopg.Error) as bad_sql:
        Timescale(timescale.dsn).fetch("SELECT * FROM no_such_table")
    assert not is_transient(bad_sql.value)
    assert not is_transient(ValueError("bad payload"))
