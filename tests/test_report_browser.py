"""The report in a real browser: headless Chromium (Debian's package) driven by Playwright, no browser download.

Every plot renders and the page logs no console error, for 50 and for 5,000 trials. Screenshots go to the test's
folder; with TUNESMITH_WRITE_SCREENSHOTS=1 they also replace docs/report-50.jpg and docs/report-5000.jpg (the
README shows those). Skips, naming what to install, where Playwright or Chromium is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.test_report import store_synthetic_trials

DOCS = Path(__file__).resolve().parents[1] / "docs"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install playwright "
                                   "(never `playwright install`: it uses Debian's chromium)")
    pytest.importorskip("plotly", reason="the report needs plotly: pip install 'tunesmith[report]'")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not found: install the Debian package 'chromium' (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.mark.slow
@pytest.mark.parametrize("trials", [50, 5000])
def test_every_plot_renders_without_console_errors(project, browser, trials):
    store_synthetic_trials(project, "shown", trials)
    project.cli("report", "shown", "-o", "shown.html", check=True, timeout=120)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((project.root / "shown.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length === 7 && "
                           "[...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg'))",
                           timeout=180_000)
    drawn = page.evaluate("[...document.querySelectorAll('.js-plotly-plot')].map(p => p._fullData.length)")
    assert all(n >= 1 for n in drawn), drawn  # each plot has data on it, not an empty frame
    assert not errors, errors
    assert all(u.startswith("file://") for u in requests), requests  # nothing fetched from a network
    shot = project.root / f"report-{trials}.jpg"
    page.screenshot(path=str(shot), full_page=True, type="jpeg", quality=70)
    page.close()
    assert shot.stat().st_size > 50_000
    if os.environ.get("TUNESMITH_WRITE_SCREENSHOTS") == "1":
        shutil.copy(shot, DOCS / shot.name)
