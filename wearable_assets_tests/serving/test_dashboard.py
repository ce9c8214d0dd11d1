"""The dashboard driven in headless Chromium against the API and the asset-loaded database.

Screenshots land in ``artifacts/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from wearable_assets import settings
from wearable_assets.serving.api import STATIC_DIR
from wearable_assets_tests.serving.conftest import LoadedData
from wearable_assets_tests.serving.servers import RunningApi
from wearable_assets_tests.serving.webdriver import Browser, browser_available

ARTIFACTS = settings.REPO_ROOT / "artifacts"
READY = "return ['ready', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"


@pytest.fixture
def browser() -> Iterator[Browser]:
    problem = browser_available()
    if problem:
        pytest.fail(f"the dashboard test needs a browser: {problem}")
    with Browser() as b:
        yield b


def chart_points(browser: Browser) -> int:
    """Points handed to the chart; and the chart must have drawn some when there are any."""
    loaded, drawn = browser.execute("const s = window.dashboard.state;"
                                    "return [s.points.length, s.chart.getDatasetMeta(0).data.length]")
    assert (drawn > 0) == (loaded > 0)
    return loaded


def api_total(api: RunningApi, browser: Browser, participant_id: str, metric: str) -> dict:
    """What the API says for the window the page is showing."""
    start_ms, end_ms = browser.execute("return [window.dashboard.state.startMs, window.dashboard.state.endMs]")
    start, end = (datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat() for ms in (start_ms, end_ms))
    response = requests.get(f"{api.url}/data", timeout=30, params={
        "participant_id": participant_id, "metric": metric, "start": start, "end": end, "limit": 1})
    assert response.status_code == 200, response.text
    return response.json()


def set_dates_and_show(browser: Browser, first: str, last: str) -> str:
    browser.execute("document.body.dataset.state = 'loading';"
                    "document.getElementById('start').value = arguments[0];"
                    "document.getElementById('end').value = arguments[1];"
                    "document.getElementById('show').click();", first, last)
    return browser.wait_for(READY)


def test_dashboard_shows_a_participants_data(api: RunningApi, serving_data: LoadedData, browser: Browser) -> None:
    browser.get(f"{api.url}/")
    assert browser.wait_for(READY) == "ready", browser.execute("return document.getElementById('error').textContent")

    # the overview table lists every participant, with valid days out of 7
    rows = browser.execute("return [...document.querySelectorAll('#participants tbody tr')]"
                           ".map(r => [...r.cells].map(c => c.textContent))")
    assert {r[0] for r in rows} >= set(serving_data.participants)
    assert all(re.fullmatch(r"\d / 7", r[7]) for r in rows)

    # pick another participant in the picker, as a user would: the chart fills from the API
    assert browser.execute("return document.getElementById('participant').value") == serving_data.participants[0]
    pid = serving_data.participants[1]
    browser.execute("const s = document.getElementById('participant'); s.value = arguments[0];"
                    "document.body.dataset.state = 'loading'; s.dispatchEvent(new Event('change'));", pid)
    assert browser.wait_for(READY) == "ready"
    assert browser.execute("return document.getElementById('metric').value") == "heart_rate"
    expected = api_total(api, browser, pid, "heart_rate")
    assert expected["resolution"] == "1h"  # the default 7-day window routes to the hourly rollup
    assert expected["total_count"] > 24
    assert chart_points(browser) == expected["total_count"]
    status = browser.execute("return document.getElementById('status').textContent")
    assert f"{expected['total_count']} of {expected['total_count']} points" in status
    assert "wearables.intraday_hourly" in status
    assert browser.execute("return document.querySelector('#participants tr.selected').dataset.participant") == pid
    browser.screenshot(ARTIFACTS / "serving_dashboard_week.png")

    # one day: auto switches to raw samples, paged in several requests
    day = serving_data.days[1].isoformat()
    assert set_dates_and_show(browser, day, day) == "ready"
    expected = api_total(api, browser, pid, "heart_rate")
    assert expected["resolution"] == "raw" and expected["total_count"] > 5000  # more than one page of 5000
    assert chart_points(browser) == expected["total_count"]
    assert browser.execute("return document.getElementById('status').dataset.resolution") == "raw"
    browser.screenshot(ARTIFACTS / "serving_dashboard_day.png")

    # zoom out: two days, back to the hourly rollup
    browser.execute("document.body.dataset.state = 'loading'; document.getElementById('zoom-out').click();")
    assert browser.wait_for(READY) == "ready"
    assert browser.execute("return document.getElementById('status').dataset.resolution") == "1h"
    assert chart_points(browser) == api_total(api, browser, pid, "heart_rate")["total_count"]

    # drag across the middle third of the chart: the window shrinks to that range and reloads
    before = browser.execute("const s = window.dashboard.state; return s.endMs - s.startMs")
    browser.execute("""
        document.body.dataset.state = 'loading';
        const canvas = document.getElementById('chart');
        const box = canvas.getBoundingClientRect();
        const at = (type, fraction, target) => target.dispatchEvent(new MouseEvent(type, {
            bubbles: true, clientX: box.left + box.width * fraction, clientY: box.top + box.height / 2}));
        at('mousedown', 0.35, canvas); at('mousemove', 0.65, canvas); at('mouseup', 0.65, window);
    """)
    assert browser.wait_for(READY) == "ready"
    after = browser.execute("const s = window.dashboard.state; return s.endMs - s.startMs")
    assert 0.2 * before < after < 0.4 * before
    assert chart_points(browser) == api_total(api, browser, pid, "heart_rate")["total_count"]

    # an API error is shown to the user, not swallowed
    browser.execute("document.getElementById('resolution').value = 'raw';")
    first = (serving_data.days[0] - timedelta(days=10)).isoformat()
    assert set_dates_and_show(browser, first, serving_data.days[-1].isoformat()) == "error"
    error = browser.execute("return document.getElementById('error').textContent")
    assert "resolution=raw is limited to 7 days" in error
    assert chart_points(browser) == 0


def test_vendor_files_match_pins() -> None:
    """The vendored libraries are the pinned upstream files (checksums in static/vendor/README.md)."""
    readme = (STATIC_DIR / "vendor" / "README.md").read_text()
    pins = re.findall(r"\| `([^`]+\.js)` \|.*\| `([0-9a-f]{64})` \|", readme)
    assert len(pins) == 2
    index = (STATIC_DIR / "index.html").read_text()
    for relative, digest in pins:
        path = STATIC_DIR / "vendor" / relative
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, relative
        assert f"static/vendor/{relative}" in index
        assert any(p.name.endswith("LICENSE.md") for p in Path(path).parent.iterdir())
