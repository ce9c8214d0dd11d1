"""Where the API's database login comes from, and that its password never shows (no database)."""

from __future__ import annotations

import psycopg
import pytest

from wearable_assets.serving.config import API_LOGIN_ROLE, ServingConfig, api_dsn, describe_dsn
from wearable_assets.settings import API_DSN_ENV


@pytest.mark.parametrize("pipeline_dsn", [
    "postgresql://pipeline:s3cret@db.example:6543/study?sslmode=require",
    "host=db.example port=6543 dbname=study user=pipeline password=s3cret sslmode=require",
])
def test_the_default_api_dsn_is_the_pipelines_server_as_the_read_role_without_its_password(pipeline_dsn: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(api_dsn(pipeline_dsn))
    assert params == {"host": "db.example", "port": "6543", "dbname": "study", "user": API_LOGIN_ROLE,
                      "sslmode": "require"}


@pytest.mark.parametrize("dsn", [
    "postgresql://wearables_api:s3cret@db.example:6543/study",
    "host=db.example port=6543 dbname=study user=wearables_api password=s3cret",
])
def test_describe_dsn_never_shows_the_password(dsn: str) -> None:
    assert describe_dsn(dsn) == "wearables_api@db.example:6543/study"
    assert "s3cret" not in describe_dsn(dsn)


def test_from_env_prefers_the_api_dsn_and_otherwise_derives_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEARABLES_TIMESCALE_DSN", "postgresql://pipeline:pw@127.0.0.1:55432/wearables")
    monkeypatch.delenv(API_DSN_ENV, raising=False)
    derived = psycopg.conninfo.conninfo_to_dict(ServingConfig.from_env().dsn)
    assert (derived["user"], derived["host"], derived["dbname"], "password" in derived) == (
        API_LOGIN_ROLE, "127.0.0.1", "wearables", False)
    monkeypatch.setenv(API_DSN_ENV, "postgresql://wearables_api:other@10.0.0.5/prod")
    assert ServingConfig.from_env().dsn == "postgresql://wearables_api:other@10.0.0.5/prod"
