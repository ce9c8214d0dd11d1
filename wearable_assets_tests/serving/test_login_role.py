"""The API's database login, ``wearables_api`` (sql/009_api_login_role.sql): connected as it,
nothing a client statement can do — ``RESET ROLE``, ``SET ROLE``, ``SET SESSION AUTHORIZATION``,
switching the read-only default off — reaches a write or the OAuth token table.

These connect as the role directly, not through the API's pool, so the read-only session
default that the pool adds plays no part: the role's own privileges are what is tested.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from wearable_assets.serving.config import API_LOGIN_ROLE
from wearable_assets.serving.db import login_problems
from wearable_assets_tests.serving.conftest import LoadedData

TOKENS = "wearables.oauth_tokens"


@pytest.fixture
def as_api(serving_data: LoadedData) -> Iterator[psycopg.Connection]:
    with psycopg.connect(serving_data.api_dsn, autocommit=True) as conn:
        yield conn


def owner(data: LoadedData, statement: str | sql.Composable, params: tuple | dict | None = None) -> list[tuple]:
    """Run ``statement`` as the pipeline's user (the loaded database's owner)."""
    with psycopg.connect(data.dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def relations(data: LoadedData) -> list[tuple[str, str, str]]:
    """(qualified name, kind, first column) of every table and view of the wearables schema."""
    return owner(data, """
        SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text,
               (SELECT quote_ident(a.attname) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LIMIT 1)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'wearables' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1""")


def refused(conn: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_login_is_its_own_role_with_no_attributes_and_no_memberships(
    as_api: psycopg.Connection, serving_data: LoadedData
) -> None:
    assert as_api.execute("SELECT session_user, current_user").fetchone() == (API_LOGIN_ROLE, API_LOGIN_ROLE)
    (attrs,), = owner(serving_data, "SELECT ARRAY[rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
                      "rolinherit] FROM pg_roles WHERE rolname = %s", (API_LOGIN_ROLE,))
    assert attrs == [False] * 6
    assert owner(serving_data, "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = %s::regrole",
                 (API_LOGIN_ROLE,)) == []
    assert login_problems(as_api) == []


def test_reset_role_then_writing_is_refused_on_every_table(
    as_api: psycopg.Connection, serving_data: LoadedData
) -> None:
    tables = relations(serving_data)
    assert {"wearables.participants", "wearables.fitbit_intraday", TOKENS} <= {t for t, _, _ in tables}
    as_api.execute("RESET ROLE")
    as_api.execute("SET default_transaction_read_only = off")
    assert as_api.execute("SELECT current_user").fetchone() == (API_LOGIN_ROLE,)
    for table, kind, column in tables:
        refused(as_api, f"INSERT INTO {table} DEFAULT VALUES")
        refused(as_api, f"UPDATE {table} SET {column} = {column}")
        refused(as_api, f"DELETE FROM {table}")
        if kind == "v":
            refused(as_api, f"DROP VIEW {table}")
        else:
            refused(as_api, f"TRUNCATE {table}")
            refused(as_api, f"DROP TABLE {table}")
    refused(as_api, "INSERT INTO wearables.participants (participant_id, study_id, time_zone, enrolled_from) "
                    "VALUES ('INTRUDER', 'X', 'UTC', '2026-01-01')")
    refused(as_api, "CREATE TABLE wearables.intruder (x int)")
    refused(as_api, "CREATE SCHEMA intruder")
    refused(as_api, "GRANT SELECT ON wearables.oauth_tokens TO PUBLIC")
    assert owner(serving_data, "SELECT count(*) FROM wearables.participants WHERE participant_id = 'INTRUDER'") == [(0,)]


def test_the_token_table_cannot_be_read_in_any_way(as_api: psycopg.Connection) -> None:
    as_api.execute("RESET ROLE")
    for statement in (f"SELECT FROM {TOKENS}", f"SELECT count(*) FROM {TOKENS}",
                      f"SELECT token_ciphertext FROM {TOKENS}", f"SELECT participant_id FROM {TOKENS}",
                      f"COPY {TOKENS} TO STDOUT", f"TABLE {TOKENS}"):
        refused(as_api, statement)
    # What /participants needs of it comes through the view, without any token column.
    columns = [c.name for c in as_api.execute("SELECT * FROM wearables.auth_states LIMIT 0").description]
    assert columns == ["participant_id", "provider", "auth_state", "reconsent_reason", "auth_state_since"]


def test_no_role_can_be_switched_to(as_api: psycopg.Connection, serving_data: LoadedData) -> None:
    (pipeline_user,), = owner(serving_data, "SELECT current_user")
    targets = [pipeline_user, "postgres", "pg_write_all_data", "pg_read_all_data", "pg_read_server_files"]
    targets += [r for (r,) in owner(serving_data, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'wearables%%' "
                                                  "AND rolname <> %s", (API_LOGIN_ROLE,))]
    for role in targets:
        refused(as_api, f'SET ROLE "{role}"')
        refused(as_api, f'SET SESSION AUTHORIZATION "{role}"')
        assert as_api.execute("SELECT session_user, current_user").fetchone() == (API_LOGIN_ROLE, API_LOGIN_ROLE)
    # after all of it, still no write
    refused(as_api, "DELETE FROM wearables.fitbit_intraday")


def test_privileges_are_select_only_and_never_on_the_tokens(serving_data: LoadedData) -> None:
    rows = owner(serving_data, """
        SELECT format('%%I.%%I', n.nspname, c.relname),
               has_table_privilege(%(role)s, c.oid, 'SELECT'),
               has_any_column_privilege(%(role)s, c.oid, 'SELECT'),
               has_table_privilege(%(role)s, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
               has_any_column_privilege(%(role)s, c.oid, 'INSERT, UPDATE, REFERENCES')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'wearables' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')""", {"role": API_LOGIN_ROLE})
    assert rows
    for table, selects, selects_a_column, writes, writes_a_column in rows:
        assert not writes and not writes_a_column, table
        assert (selects, selects_a_column) == ((False, False) if table == TOKENS else (True, True)), table
    assert owner(serving_data, "SELECT has_schema_privilege(%s, 'wearables', 'CREATE'), "
                               "has_database_privilege(%s, current_database(), 'CREATE')",
                 (API_LOGIN_ROLE, API_LOGIN_ROLE)) == [(False, False)]


def test_tables_of_later_migrations_are_readable_but_not_writable(
    as_api: psycopg.Connection, serving_data: LoadedData
) -> None:
    """A later migration (run by the pipeline's user) creating a table: the default privileges
    of sql/009 let the API read it, and nothing more."""
    table = f"wearables.later_migration_{os.getpid()}"
    owner(serving_data, f"CREATE TABLE {table} (x int)")
    try:
        owner(serving_data, f"INSERT INTO {table} VALUES (42)")
        assert as_api.execute(f"SELECT x FROM {table}").fetchall() == [(42,)]
        refused(as_api, f"INSERT INTO {table} VALUES (1)")
        refused(as_api, f"DELETE FROM {table}")
    finally:
        owner(serving_data, f"DROP TABLE {table}")


@pytest.fixture
def probe_role(serving_data: LoadedData) -> Iterator[tuple[str, str]]:
    """A throw-away login role with what sql/009 gives wearables_api, for misconfiguring it:
    (role name, its DSN). Roles are cluster-wide, so it is named per test session and dropped."""
    role = f"wearables_api_probe_{os.getpid()}"
    owner(serving_data, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    owner(serving_data, sql.SQL("CREATE ROLE {} LOGIN NOINHERIT").format(sql.Identifier(role)))
    owner(serving_data, sql.SQL("GRANT USAGE ON SCHEMA wearables TO {r}; GRANT SELECT ON wearables.participants "
                                "TO {r}").format(r=sql.Identifier(role)))
    try:
        yield role, psycopg.conninfo.make_conninfo(serving_data.dsn, user=role)
    finally:
        owner(serving_data, sql.SQL("DROP OWNED BY {r}; DROP ROLE {r}").format(r=sql.Identifier(role)))


def test_the_pool_check_names_every_way_a_login_could_do_more(
    serving_data: LoadedData, probe_role: tuple[str, str]
) -> None:
    role, dsn = probe_role
    (pipeline_user,), = owner(serving_data, "SELECT current_user")

    def problems() -> list[str]:
        with psycopg.connect(dsn) as conn:
            return login_problems(conn)

    assert problems() == []
    grants = [
        (f"GRANT SELECT (participant_id) ON {TOKENS} TO {{r}}", f"{role} may read {TOKENS}"),
        ("GRANT INSERT ON wearables.participants TO {r}", f"{role} may write wearables.participants"),
        ("GRANT CREATE ON SCHEMA wearables TO {r}", f"{role} may create objects in schema wearables"),
        (f'GRANT "{pipeline_user}" TO {{r}}', f"{role} is a member of {pipeline_user}"),
        ("ALTER ROLE {r} CREATEDB", f"{role} has CREATEDB"),
    ]
    for grant, problem in grants:
        owner(serving_data, sql.SQL(grant).format(r=sql.Identifier(role)))
        found = problems()
        assert any(p.startswith(problem) for p in found), (problem, found)
