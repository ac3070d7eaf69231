"""An explanation printed as a table, markdown and JSON, and in the scorecard's KPI section."""

from __future__ import annotations

import io
import json
from datetime import date

from rich.console import Console

from pipeline.explain.decompose import additive, own_changes
from pipeline.explain.marts import Explanation, Section
from pipeline.explain.render import format_delta, render_json, render_markdown, render_terminal
from pipeline.export.scorecard import scorecard_html
from tests.unit.export.test_export_scorecard import EVIL, _catalog, _rows

NOW = {"web": 600.0, "app": 300.0, EVIL: 150.0, "(null)": 10.0}
THEN = {"web": 400.0, "app": 350.0, EVIL: 100.0, "(null)": 10.0}


def _explanation(top_section: Section | None = None) -> Explanation:
    section = top_section or Section("channel", "additive", tuple(additive(NOW, THEN)))
    return Explanation(
        kpi="revenue", label="Revenue", format="currency", unit=None, direction="higher",
        grain="month", vs="previous", period_start=date(2026, 11, 1), period_end=date(2026, 11, 30),
        is_partial=True, base_start=date(2026, 10, 1), base_end=date(2026, 10, 31), to_date=True,
        value=sum(NOW.values()), base_value=sum(THEN.values()), sections=(section,),
    )  # fmt: skip


def test_formats_say_the_largest_drivers_first_and_their_sum():
    x = _explanation()
    buffer = io.StringIO()
    render_terminal(x, Console(file=buffer, width=200), top=3)
    text = buffer.getvalue()
    assert "Nov 2026 (to date) vs Oct 2026 to date" in text
    assert text.index("web") < text.index("app") and "1 other " in text and "+$200" in text
    assert EVIL in text  # printed as text, never as rich markup
    markdown = render_markdown(x)
    assert "| web | $600 | $400 | +$200 |" in markdown and "sum of contributions +$200 = the change" in markdown
    document = json.loads(render_json(x))
    assert [d["name"] for d in document["sections"][0]["drivers"]] == ["web", EVIL, "app", "(null)"]  # ties by name
    assert document["change"] == document["sections"][0]["sum_of_contributions"] == 200.0


def test_deltas_are_signed_in_the_kpis_format():
    assert format_delta(-0.0125, "percent") == "-1.25 pp"
    assert format_delta(1500.0, "currency") == "+$1,500"
    assert format_delta(0.0, "number") == "0"


def test_the_scorecard_shows_the_top_drivers_of_the_current_change_escaped():
    page = scorecard_html(_rows(), _catalog(), drivers={("revenue", "month"): _explanation()})
    section = page[page.index('id="kpi-revenue"'):]
    drivers = section[section.index('class="drivers"'):section.index("</table>")]
    assert "What drove the change: Nov 2026 (to date) vs Oct 2026 to date" in drivers
    assert drivers.index(">web<") < drivers.index(">app<") and "+$200" in drivers
    assert EVIL not in page and "&lt;script&gt;" in drivers
    assert 'class="drivers"' not in scorecard_html(_rows(), _catalog())


def test_the_scorecard_says_when_slices_do_not_add_up():
    section = Section("channel", "own_change", tuple(own_changes(NOW, THEN)), "not decomposable: overlap")
    page = scorecard_html(_rows(), _catalog(), drivers={("revenue", "month"): _explanation(section)})
    assert "Own change" in page and "not decomposable: overlap" in page
