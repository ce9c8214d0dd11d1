"""The per-write capabilities cache: same answers as dlt's, computed once, never shared mutably."""

import dlt
from dlt.common.normalizers.naming import snake_case, sql_cs_v1

from wearable_assets.storage.dlt_caps import with_cached_capabilities


def _factory():  # type: ignore[no-untyped-def]
    return dlt.destinations.filesystem(bucket_url="file:///tmp/unused-lake", layout="{table_name}/{load_id}.{file_id}.{ext}")


def test_cached_capabilities_match_dlt_and_are_computed_once() -> None:
    plain, cached = _factory(), with_cached_capabilities(_factory())
    calls = 0
    original = cached.configuration

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    cached.configuration = counting
    naming = snake_case.NamingConvention()
    for _ in range(3):
        caps = cached.capabilities(naming=naming)
        assert caps.preferred_loader_file_format == plain.capabilities(naming=naming).preferred_loader_file_format
        assert caps.supported_loader_file_formats == plain.capabilities(naming=naming).supported_loader_file_formats
    assert calls == 1
    # A case-sensitive naming convention is a different question, answered separately.
    assert cached.capabilities(naming=sql_cs_v1.NamingConvention()).casefold_identifier is str
    assert calls == 2


def test_callers_get_copies() -> None:
    cached = with_cached_capabilities(_factory())
    first = cached.capabilities()
    first.preferred_loader_file_format = "csv"  # what dlt does to the object it is handed
    assert cached.capabilities().preferred_loader_file_format != "csv"
