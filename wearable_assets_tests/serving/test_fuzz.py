"""Every parameter of every endpoint, fed nasty values: the answer is never a 5xx.

The endpoints and their parameters come from the running app's OpenAPI description, so an
endpoint or parameter added later is fuzzed without this file changing. Values are a fixed list
(no random generation: a failure must reproduce), applied to every parameter whatever its type,
plus, derived from each parameter's schema, the cases that must be refused with a 400: control
characters, over-long text, integers outside the declared range or not integers, values outside
an enum, malformed booleans and dates.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import requests

from wearable_assets.serving.params import MAX_PARAM_CHARS
from wearable_assets.serving.routing import EARLIEST_YEAR, LATEST_YEAR
from wearable_assets_tests.serving.conftest import LoadedData
from wearable_assets_tests.serving.servers import RunningApi

NASTY: list[str] = [
    "P001\x00", "\x00", "\x01", "a\x1fb", "\x7f", "x\x85y", "\t", "\n", "\r\nSet-Cookie: a=b",
    "x" * 10_000, "x" * (MAX_PARAM_CHARS + 1), "9" * 300,
    "-1", "0", "1", "+1", "01", "1.5", "1e3", str(2**31 - 1), str(2**31), str(2**63), str(2**64), str(-2**63 - 1),
    "1e309", "-1e309", "NaN", "nan", "inf", "-inf", "0x10",
    "", " ", "true", "false", "yes", "null", "None", "[]", "{}", "[1]",
    "Ω≈ç√∫ 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\u202eevil", "\ufeffP001", "\u2028", "\uffff", "٣", "P001 ",
    "../../etc/passwd", "..\\..\\windows", "%00", "%2e%2e%2f",
    "' OR '1'='1", "'; DROP TABLE wearables.participants; --", '"', "\\", "%", "_", "$1", ":name", "%(pid)s",
    "0001-01-01", "9999-12-31", "1969-12-31", "2201-01-01", "2026-02-30", "2026-11-01T25:00",
    "2026-11-01T05:00:00+25:00", "2026-11-01T05:00:00.123456789Z", "2026W451", "20261101", "2026-11-01",
    "2026-11-01T05:00:00Z", "2026-11-08", "auto", "raw", "1h", "1d", "heart_rate", "P002",
]
#: Values pydantic takes as booleans (anything else must be a 400).
BOOLEANS = {"0", "1", "true", "false", "t", "f", "yes", "no", "y", "n", "on", "off"}
#: Request lines longer than this may be refused by uvicorn's HTTP parser (a plain-text 400 for
#: about 64 KiB) before the app sees them; only the all-parameters-at-once 10,000-character case
#: gets there.
HTTP_SERVER_URL_LIMIT = 60_000
INTEGER = re.compile(r"[+-]?[0-9]+")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The parameter's schema with ``$ref`` followed and ``anyOf [X, null]`` (optional) unwrapped."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return resolve(spec, spec["components"]["schemas"][name])
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return {**resolve(spec, options[0]), **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


def operations(spec: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(method, path, parameters with resolved schemas) of every operation in the description."""
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                params = [{**p, "schema": resolve(spec, p.get("schema", {}))} for p in operation.get("parameters", [])]
                found.append((method, path, params))
    return found


def valid_values(data: LoadedData) -> dict[str, str]:
    """Values known to be valid for the parameters that need data of this database."""
    with psycopg.connect(data.dsn) as conn:
        (study_id,), = conn.execute("SELECT study_id FROM wearables.participants WHERE participant_id = %s",
                                    (data.participants[0],)).fetchall()
    return {"participant_id": data.participants[0], "metric": "heart_rate", "start": data.days[0].isoformat(),
            "end": data.days[-1].isoformat(), "as_of": (data.days[-1] + timedelta(days=1)).isoformat(),
            "study_id": study_id}


def baseline(param: dict[str, Any], known: dict[str, str]) -> str:
    """A valid value for ``param``: known for this data, else derived from its schema."""
    schema = param["schema"]
    if param["name"] in known:
        return known[param["name"]]
    if schema.get("default") is not None:
        default = schema["default"]
        return str(default).lower() if isinstance(default, bool) else str(default)
    if "enum" in schema:
        return str(schema["enum"][0])
    kind = schema.get("type")
    if kind == "boolean":
        return "false"
    if kind == "integer":
        return str(schema.get("minimum", 0))
    if schema.get("format") == "date":
        return date(2026, 11, 8).isoformat()
    return "x"


def must_be_refused(schema: dict[str, Any], value: str) -> bool:
    """Whether ``value`` breaks a rule the parameter's schema (or the app-wide check) declares."""
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value) or len(value) > MAX_PARAM_CHARS:
        return True
    if len(value) > schema.get("maxLength", MAX_PARAM_CHARS):
        return True
    if "enum" in schema and value not in [str(v) for v in schema["enum"]]:
        return True
    kind = schema.get("type")
    if kind == "boolean" and value.lower() not in BOOLEANS:
        return True
    if kind == "integer":
        if not INTEGER.fullmatch(value):
            return True
        number = int(value)
        return number < schema.get("minimum", -(2**1000)) or number > schema.get("maximum", 2**1000)
    if schema.get("format") == "date":
        try:
            day = date.fromisoformat(value) if ISO_DATE.fullmatch(value) else None
        except ValueError:
            day = None
        return day is None or not EARLIEST_YEAR <= day.year <= LATEST_YEAR
    return False


def call(api: RunningApi, method: str, path: str, params: dict[str, str], raw_query: str = "") -> requests.Response:
    path_params = {k: v for k, v in params.items() if "{" + k + "}" in path}
    for name, value in path_params.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    query = [(k, v) for k, v in params.items() if k not in path_params]
    url = f"{api.url}{path}" + (f"?{raw_query}" if raw_query else "")
    return requests.request(method.upper(), url, params=None if raw_query else query, timeout=60)


def check(response: requests.Response, context: Any, refused: bool) -> None:
    assert response.status_code < 500, (context, response.status_code, response.text[:500])
    if refused:
        assert response.status_code == 400, (context, response.status_code, response.text[:500])
    if response.status_code == 400 and len(response.request.url or "") > HTTP_SERVER_URL_LIMIT:
        return  # uvicorn's parser refused the request line itself (plain text), before the app
    if response.status_code == 400:
        assert response.headers["content-type"] == "application/json", (context, response.text[:300])
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail and "Traceback" not in detail, (context, detail)
    else:
        assert response.status_code == 200, (context, response.status_code, response.text[:500])


@pytest.fixture(scope="module")
def spec(api: RunningApi) -> dict[str, Any]:
    response = requests.get(f"{api.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


def test_the_schema_lists_the_endpoints_to_fuzz(spec: dict[str, Any]) -> None:
    """Guards the derivation: if the description stopped listing parameters, nothing would be fuzzed."""
    found = {(path, p["name"]) for _, path, params in operations(spec) for p in params}
    assert {("/data", "participant_id"), ("/data", "offset"), ("/data", "resolution"),
            ("/participants", "as_of"), ("/participants", "include_removed")} <= found
    schemas = {(path, p["name"]): p["schema"] for _, path, params in operations(spec) for p in params}
    assert schemas[("/data", "offset")]["maximum"] == 2**31 - 1
    assert schemas[("/data", "resolution")]["enum"] == ["auto", "raw", "1min", "1h", "1d"]
    assert schemas[("/participants", "as_of")]["format"] == "date"


def test_every_parameter_of_every_endpoint_survives_nasty_values(
    api: RunningApi, serving_data: LoadedData, spec: dict[str, Any]
) -> None:
    known = valid_values(serving_data)
    for method, path, params in operations(spec):
        valid = {p["name"]: baseline(p, known) for p in params}
        response = call(api, method, path, valid)
        assert response.status_code == 200, (path, valid, response.text[:500])
        for param in params:
            for value in NASTY:
                response = call(api, method, path, {**valid, param["name"]: value})
                check(response, (path, param["name"], value), must_be_refused(param["schema"], value))
        # every parameter nasty at once
        for value in NASTY:
            response = call(api, method, path, {p["name"]: value for p in params})
            refused = any(must_be_refused(p["schema"], value) for p in params)
            check(response, (path, "all", value), refused)


def test_unknown_parameters_and_raw_query_strings_never_cause_a_5xx(
    api: RunningApi, serving_data: LoadedData, spec: dict[str, Any]
) -> None:
    known = valid_values(serving_data)
    raw_queries = ["%FF", "%00=1", "a=%00", "=", "&&&", "a", "a=1&a=2", "%", "%zz=%zz", "a=%ED%A0%80",
                   "participant_id=%00", "limit=1&limit=%FF", "x=" + "%41" * 5000]
    for method, path, params in operations(spec):
        valid = {p["name"]: baseline(p, known) for p in params}
        for value in NASTY:
            extra = {**valid, "not_a_parameter": value}
            check(call(api, method, path, extra), (path, "unknown", value), must_be_refused({}, value))
            named = {**valid, value: "1"}  # the value as a parameter *name*
            refused = value != "" and must_be_refused({}, value)
            check(call(api, method, path, named), (path, "name", value), refused)
        for raw in raw_queries:
            response = call(api, method, path, valid, raw_query=raw)
            assert response.status_code < 500, (path, raw, response.status_code, response.text[:300])
