"""No text from a metric file reaches dbt's Jinja: the loader refuses Jinja delimiters
(tests/fixtures/broken_metrics/100-112), and the renderer, whatever it is given, writes
no Jinja but its own (checked here on specs that skipped validation)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.catalog import read_catalog
from pipeline.compiler import check_files, compile_files
from pipeline.errors import Location
from pipeline.plan.planner import plan
from pipeline.render import dbt
from pipeline.spec.model import Spec

FIXTURES = Path(__file__).parents[2] / "fixtures"
ATTACK = '{{ run_query("create table pwned as select 1") }}'

METRICS = """
kpis:
  - name: revenue
    label: Revenue
    description: Sales net of returns.
    owner: finance
    unit: euros
    category: financial
    model: orders
    time: order_date
    sum: "CASE WHEN status = 'paid' THEN amount END"
    filter: "channel <> 'test'"
    dimensions: [channel]
    targets: [{value: 1000, per: month, where: {channel: web}}]
  - {name: orders_placed, category: sales_marketing, model: orders, time: order_date, count: "*"}
  - {name: revenue_per_order, category: financial, derived: "revenue / orders_placed + length('x')"}
  - name: clv
    category: customer
    lifetime_value: {model: orders, time: order_date, entity: customer_id, sum: "amount * 1"}
"""


@pytest.fixture(scope="module")
def catalog():
    return read_catalog(FIXTURES / "catalog" / "models", FIXTURES.parents[1])


@pytest.fixture(scope="module")
def spec(catalog) -> Spec:
    compiled = compile_files({"metrics/shop.yml": METRICS}, catalog)
    assert compiled.ok, compiled.issues
    return compiled.spec


def _with(spec: Spec, name: str, **fields: object) -> Spec:
    kpis = tuple(replace(k, **fields) if k.name == name else k for k in spec.kpis)
    return replace(spec, kpis=kpis)


def _target_slice(spec: Spec) -> Spec:
    revenue = spec.kpi("revenue")
    assert revenue is not None
    target = replace(revenue.targets[0], where=("channel", ATTACK))
    return _with(spec, "revenue", targets=(target,))


def _macro_file(spec: Spec) -> Spec:
    config = replace(spec.config, incremental_lookback_days=3, location=Location(ATTACK, 3, 1))
    return replace(spec, config=config)


PLACES = {
    "label": lambda s: _with(s, "revenue", label=f"Revenue {ATTACK}"),
    "description": lambda s: _with(s, "revenue", description=f"Sales {ATTACK}"),
    "owner": lambda s: _with(s, "revenue", owner=ATTACK),
    "unit": lambda s: _with(s, "revenue", unit=ATTACK),
    "string in an expression": lambda s: _with(
        s, "revenue", expr=f"CASE WHEN status = '{ATTACK}' THEN amount END"
    ),
    "string in a filter": lambda s: _with(s, "revenue", filter=f"channel <> '{ATTACK}'"),
    "string in a formula": lambda s: _with(
        s, "revenue_per_order", formula=f"revenue / orders_placed + length('{ATTACK}')"
    ),
    "string in a kind's expression": lambda s: _with(
        s, "clv", params=replace(s.kpi("clv").params, sum=f"length('{ATTACK}')")
    ),
    "quoted column name": lambda s: _with(s, "revenue", expr="\"{{ env_var('HOME') }}\""),
    "target slice": _target_slice,
    "metric file name": lambda s: _with(s, "orders_placed", file=f"metrics/{ATTACK}.yml"),
    "lookback macro's file name": _macro_file,
}


@pytest.mark.parametrize("place", PLACES)
def test_the_renderer_refuses_to_write_jinja_from_any_field(spec: Spec, place: str):
    broken = PLACES[place](spec)
    with pytest.raises(ValueError, match=r"generated text would hold Jinja \('\{\{'\)"):
        dbt.render(broken, plan(broken))


@pytest.mark.parametrize(
    "text",
    [
        "length('{{ this }}')",  # the very Jinja the model prints for its stored table
        "length('{{ first_recomputed }}')",
    ],
)
def test_user_text_spelling_the_renderer_s_own_jinja_is_refused_too(spec: Spec, text: str):
    # the incremental entities model prints {{ this }} and {{ first_recomputed }} itself
    daily = _with(_macro_file(spec), "clv", params=replace(spec.kpi("clv").params, sum=text))
    daily = replace(daily, config=replace(daily.config, location=None))
    with pytest.raises(ValueError, match=r"generated text would hold Jinja \('\{\{'\)"):
        dbt.render(daily, plan(daily))


def test_the_placeholders_of_the_trees_all_become_the_renderer_s_jinja(spec: Spec):
    daily = replace(spec, config=replace(spec.config, incremental_lookback_days=3))
    files = dbt.render(daily, plan(daily))
    assert "{{ this }}" in files["models/kpi/entities/kpi_entities__clv.sql"]
    assert "{% if is_incremental() %}" in files["models/kpi/measures/kpi_measures__orders.sql"]
    for path, text in files.items():
        assert "__ref__" not in text and "__this__" not in text, path
        assert "__incremental__" not in text, path


def test_model_descriptions_in_the_yaml_hold_no_jinja(spec: Spec):
    # dbt renders YAML descriptions with Jinja too; the wide marts describe each KPI
    broken = _with(spec, "revenue", description="Sales {% do run_query('drop table x') %}")
    with pytest.raises(ValueError, match=r"would hold Jinja \('\{%'\): description: "):
        dbt._properties(plan(broken))


def test_braces_that_open_no_jinja_are_kept_as_written(spec: Spec):
    label = "Revenue {EU} 100% #1 { {x} }"
    kept = _with(spec, "revenue", label=label, expr="CASE WHEN status = '{paid}' THEN amount END")
    files = dbt.render(kept, plan(kept))
    assert f"'{label}'" in files["models/kpi/kpi_catalog.sql"]
    assert "status = '{paid}'" in files["models/kpi/measures/kpi_measures__orders.sql"]


def test_a_metric_file_named_with_jinja_is_refused(catalog):
    name = "metrics/{{ env_var('HOME') }}.yml"
    _, issues = check_files({name: METRICS}, catalog)
    assert f"{name}: error: file name must not contain '{{{{' (dbt would run it as Jinja)" in [
        str(i) for i in issues
    ]


def test_every_delimiter_is_refused_in_every_text_of_a_metric_file(catalog):
    for delimiter in ("{{", "{%", "{#"):
        text = METRICS.replace("Sales net of returns.", f"Sales {delimiter} net")
        _, issues = check_files({"metrics/shop.yml": text}, catalog)
        assert [str(i) for i in issues] == [
            f"metrics/shop.yml:5:18: error: kpi 'revenue': description must not contain"
            f" '{delimiter}' (dbt would run it as Jinja)"
        ]


def test_only_the_jinja_the_generator_printed_is_allowed():
    ours = ["{{ this }}"]
    assert dbt._plain("select * from {{ this }}", ours) == "select * from {{ this }}"
    for text in ["select '{' from {{{ this }}", "select 1 from {{ this }} join {{ this }}"]:
        with pytest.raises(ValueError, match=r"would hold Jinja \('\{\{'\)"):
            dbt._plain(text, ours)
