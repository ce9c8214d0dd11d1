"""The compliance page in headless Chromium: the cells the DOM shows are the states the database
derives for the seeded cohort, per device too; the cohort and ledger panels are filled.

The screenshot lands in ``artifacts/`` (git-ignored); docs/compliance.png is a copy of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from wearable_assets import settings
from wearable_assets.compliance import queries
from wearable_assets.storage.resources import TimescaleResource
from wearable_assets_tests.compliance import cohort
from wearable_assets_tests.serving.servers import RunningApi
from wearable_assets_tests.serving.webdriver import Browser, browser_available

ARTIFACTS = settings.REPO_ROOT / "artifacts"
READY = "return ['ready', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"
DOM_CELLS = ("return [...document.querySelectorAll('#grid tbody tr')].flatMap(r => "
             "[...r.querySelectorAll('td.cell')].map(c => [r.dataset.participant, c.dataset.date, c.dataset.state, "
             "c.title]))")


@pytest.fixture
def browser() -> Iterator[Browser]:
    problem = browser_available()
    if problem:
        pytest.fail(f"the compliance page test needs a browser: {problem}")
    with Browser() as b:
        yield b


def dom_states(browser: Browser) -> dict[tuple[str, date], str]:
    cells = browser.execute(DOM_CELLS)
    assert all(title for *_, title in cells), "every cell explains itself on hover"
    return {(pid, date.fromisoformat(day)): state for pid, day, state, _ in cells}


def test_page_shows_the_databases_states(compliance_api: RunningApi, timescale: TimescaleResource,
                                         browser: Browser) -> None:
    browser.get(f"{compliance_api.url}/compliance?start={cohort.FIRST}&end={cohort.LAST}")
    assert browser.wait_for(READY) == "ready", browser.execute("return document.getElementById('error').textContent")
    with psycopg.connect(timescale.dsn) as conn:
        rows = queries.cells(conn, cohort.FIRST, cohort.LAST)
    database = {(r["participant_id"], r["local_date"]): r for r in rows}

    shown = dom_states(browser)
    assert shown == {k: r["state"] for k, r in database.items()}
    assert shown == {k: t[0] for k, t in cohort.EXPECTED.items()}
    titles = {(pid, day): title for pid, day, _, title in browser.execute(DOM_CELLS)}
    assert database[("F001", date(2026, 11, 4))]["reason"] in titles[("F001", "2026-11-04")]
    # the per-participant columns: the legacy participant's token needs re-consent since a time
    legacy_row = browser.execute("return [...document.querySelector('#grid tr[data-participant=\"R001\"]').cells]"
                                 ".map(c => c.textContent)")
    assert legacy_row[2].startswith("needs re-consent (gone_410) since 20")
    browser.screenshot(ARTIFACTS / "compliance.png")

    for device, index in (("fitbit", 1), ("actigraph", 2)):
        browser.execute("const d = document.getElementById('device'); d.value = arguments[0];"
                        "d.dispatchEvent(new Event('change'));", device)
        assert dom_states(browser) == {k: t[index] for k, t in cohort.EXPECTED.items()}

    # cohort adherence and the ledger panel
    weeks = browser.execute("return [...document.querySelectorAll('#cohort tbody tr')].map(r => "
                            "[r.dataset.study, r.cells[5].textContent, r.cells[6].textContent])")
    c1 = [w for w in weeks if w[0] == cohort.STUDY]
    enrolled = [t for (pid, _), t in cohort.EXPECTED.items() if pid != "N001" and t[0] != "outside_enrolment"]
    valid = sum(1 for t in enrolled if t[0] == "valid")
    assert c1 == [[cohort.STUDY, f"{valid} / {len(enrolled)}", f"{round(100 * valid / len(enrolled), 1)} %"]]
    ledger = browser.execute("return [...document.querySelectorAll('#ledger tbody tr')].map(r => "
                             "[r.dataset.participant, r.dataset.provider, r.dataset.ledgerState])")
    assert ["R001", "fitbit_legacy", "legacy_fitbit_token"] in ledger

    # the study filter: only the other study's participant is left
    browser.execute("document.body.dataset.state = 'loading'; const s = document.getElementById('study');"
                    "s.value = arguments[0]; s.dispatchEvent(new Event('change'));", cohort.OTHER_STUDY)
    assert browser.wait_for(READY) == "ready"
    assert set(pid for pid, _ in dom_states(browser)) == {"N001"}
    href = browser.execute("return document.getElementById('csv').href")
    assert "format=csv" in href and f"study_id={cohort.OTHER_STUDY}" in href


def select(browser: Browser, participant_id: str) -> None:
    browser.execute("const s = document.getElementById('participant'); s.value = arguments[0];"
                    "document.body.dataset.state = 'loading'; s.dispatchEvent(new Event('change'));", participant_id)
    assert browser.wait_for(READY) == "ready"


def empty_state(browser: Browser) -> tuple[str | None, str, bool]:
    return browser.execute("const e = document.getElementById('empty');"
                           "return [e.hidden ? null : e.dataset.reason, e.textContent,"
                           "        document.getElementById('chart-box').hidden]")


def test_empty_charts_say_why(compliance_api: RunningApi, browser: Browser) -> None:
    browser.get(f"{compliance_api.url}/")
    assert browser.wait_for(READY) == "ready"

    select(browser, "A001")  # ActiGraph only
    reason, text, chart_hidden = empty_state(browser)
    assert reason == "no_device" and "A001 has no Fitbit in the roster" in text and chart_hidden
    assert "0 of 0 points" in browser.execute("return document.getElementById('status').textContent")

    select(browser, "R001")  # legacy token, dead since the 410
    reason, text, _ = empty_state(browser)
    assert reason == "needs_reconsent"
    assert "R001 needs to consent again (gone_410) since 20" in text and "No data has been loaded" in text

    select(browser, "V001")  # opens on the last 7 days with data: a chart, no explanation
    assert empty_state(browser)[0] is None
    assert browser.execute("return window.dashboard.state.points.length") > 0
    browser.execute("document.body.dataset.state = 'loading';"
                    "document.getElementById('start').value = '2026-11-20';"
                    "document.getElementById('end').value = '2026-11-26';"
                    "document.getElementById('show').click();")
    assert browser.wait_for(READY) == "ready"
    reason, text, chart_hidden = empty_state(browser)
    assert "Data exists from 2026-11-02 to 2026-11-06" in text and chart_hidden
    browser.screenshot(ARTIFACTS / "dashboard_empty_state.png")
    browser.execute("document.body.dataset.state = 'loading'; document.getElementById('jump').click();")
    assert browser.wait_for(READY) == "ready"
    assert browser.execute("return document.getElementById('end').value") == "2026-11-06"
    assert browser.execute("return window.dashboard.state.points.length") > 0
    assert empty_state(browser)[0] is None
