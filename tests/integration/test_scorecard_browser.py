"""The scorecard in a real headless Chromium (the Debian package, installed when missing).

The page built from the demo warehouse loads with no console message at all (a control
page proves console errors are caught), its cards and SVG charts are in the rendered DOM,
a KPI label holding HTML is shown as text, and a screenshot is written to the test's
output folder (`scorecard.png`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pipeline.export.cards import read_totals
from pipeline.export.catalog import build_catalog
from pipeline.export.scorecard import scorecard_html
from pipeline.project import Project
from tests.conftest import REPO_ROOT, release_duckdb_handles
from tests.support import apt

pytestmark = [pytest.mark.browser, pytest.mark.dbt]

EVIL = "<script>alert(1)</script>"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE = re.compile(r":CONSOLE[:(]\d+\)?\]\s*(.*)")


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    found = _find_chromium()
    if found is None:
        reason = apt.install("chromium", "Chromium")
        found = _find_chromium()
        if found is None:
            pytest.skip(reason or "Chromium not found after installing the package")
    return found


def run_chromium(chromium: str, page: Path, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """Open `page`; return what Chromium printed (stdout) and its console messages."""
    profile.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    console = [m.group(1) for line in result.stderr.splitlines() if (m := CONSOLE.search(line))]
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, console


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str, cls: str | None = None) -> int:
        return sum(
            1 for t, a in self.elements if t == tag and (cls is None or cls in a.get("class", "").split())
        )


@pytest.fixture(scope="module")
def page(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    release_duckdb_handles()
    rows: list[dict[str, Any]] = read_totals(demo_warehouse)
    catalog = build_catalog(Project(REPO_ROOT))
    # one KPI's label holds HTML: it must render as text
    for entry in catalog["kpis"]:
        if entry["name"] == "revenue":
            entry["label"] = f"Revenue {EVIL}"
    out = tmp_path_factory.mktemp("scorecard") / "scorecard.html"
    out.write_text(scorecard_html(rows, catalog, title="Happy Home Goods: KPI scorecard"), encoding="utf-8")
    return out


def test_console_errors_are_caught(chromium: str, tmp_path: Path) -> None:
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><p>x</p><script>console.error("boom"); notDefined();</script>')
    _, console = run_chromium(chromium, control, tmp_path / "profile", "--dump-dom")
    assert any("boom" in m for m in console) and any("notDefined" in m for m in console)


def test_the_scorecard_loads_without_console_errors_and_shows_cards_and_charts(
    chromium: str, page: Path, tmp_path: Path
) -> None:
    dom_text, console = run_chromium(chromium, page, tmp_path / "profile", "--dump-dom")
    assert console == []
    dom = _Dom()
    dom.feed(dom_text)
    cards = dom.count("article", "card")
    charts = dom.count("svg", "chart")
    assert cards > 50, cards
    assert charts >= cards
    assert dom.count("polyline") > cards  # value and target lines drawn
    assert dom.count("input") == 5 and dom.count("label", "grain-label") == 5  # the grain selector
    assert dom.count("script") == 0  # the label's HTML did not become an element…
    assert any(EVIL in t for t in dom.text)  # …it is text
    categories = [a.get("id") for t, a in dom.elements if t == "section" and "category" in a.get("class", "")]
    assert "category-financial" in categories and len(categories) >= 4


def test_a_screenshot_is_written(chromium: str, page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "scorecard.png"
    _, console = run_chromium(
        chromium, page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,1800",
        "--hide-scrollbars",
    )
    assert console == []
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one
    print(f"screenshot: {shot}")
