"""The MetricFlow importer's mapping, on small in-memory definitions: what converts to
what, what is refused with which reason and place, and the filter translation."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from sqlglot import exp

from pipeline.importers.metricflow import Imported, import_project
from pipeline.importers.metricflow_filters import FilterError, translate
from pipeline.spec import located_yaml

SEMANTIC = """
semantic_models:
  - name: orders
    model: ref('stg_orders')
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: order_id}
      - {name: customer, type: foreign, expr: buyer_id}
    dimensions:
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
      - {name: booked_month, type: time, expr: booked_on, type_params: {time_granularity: month}}
      - {name: status, type: categorical}
      - {name: big, type: categorical, expr: "amount > 100"}
    measures:
      - {name: total, agg: sum, expr: amount}
      - {name: n, agg: count, expr: order_id}
      - {name: mean, agg: average, expr: amount}
      - {name: p50, agg: percentile, expr: amount, agg_params: {percentile: 0.5}}
      - {name: p50_discrete, agg: percentile, expr: amount, agg_params: {percentile: 0.5, use_discrete_percentile: true}}
      - {name: gifts, agg: sum_boolean, expr: is_gift, create_metric: true}
      - {name: booked, agg: sum, expr: amount, agg_time_dimension: booked_month}
  - name: customers
    model: ref("stg_customers")
    defaults: {agg_time_dimension: joined_on}
    entities:
      - {name: customer, type: primary, expr: customer_id}
    dimensions:
      - {name: joined_on, type: time, type_params: {time_granularity: day}}
      - {name: segment, type: categorical}
    measures:
      - {name: signups, agg: count, expr: customer_id}
"""


def _import(metrics: str, semantic: str = SEMANTIC) -> Imported:
    docs = []
    for name, text in (("models/sem.yml", semantic), ("models/metrics.yml", metrics)):
        doc, issues = located_yaml.load(textwrap.dedent(text), name)
        assert doc is not None and not issues
        docs.append((name, doc))
    return import_project(docs, "postgres")


def _kpis(result: Imported) -> dict[str, dict]:
    out = {}
    for text in result.files.values():
        for kpi in yaml.safe_load(text).get("kpis", []):
            out[kpi["name"]] = kpi
    return out


def _reasons(result: Imported) -> dict[str, str]:
    return {
        str(i).split("metric '")[1].split("'")[0]: str(i)
        for i in result.issues
        if i.message.startswith("metric '")
    }


def test_simple_metrics_map_aggregation_time_filter_dimensions_and_relationships() -> None:
    result = _import("""
        metrics:
          - name: completed_total
            label: Completed
            type: simple
            type_params: {measure: total}
            filter: "{{ Dimension('order__status') }} = 'completed' and {{Dimension(\\"customer__segment\\")}} <> 'trade'"
            config: {meta: {category: financial, owner: a@b.c}}
          - {name: median_amount, type: simple, type_params: {measure: p50}}
          - {name: booked_total, type: simple, type_params: {measure: booked}}
        """)
    kpis = _kpis(result)
    assert kpis["completed_total"] == {
        "name": "completed_total",
        "label": "Completed",
        "category": "financial",
        "owner": "a@b.c",
        "model": "stg_orders",
        "time": "ordered_at",
        "sum": "amount",
        "filter": "status = 'completed' AND stg_customers.segment <> 'trade'",
        "dimensions": [
            "status",
            {"name": "customer__segment", "column": "stg_customers.segment"},
        ],
    }
    assert kpis["median_amount"]["median"] == "amount"
    assert kpis["gifts"]["sum"] == "CAST(is_gift AS INT)"  # create_metric: true
    # a month-grained time dimension: no day or week periods
    assert kpis["booked_total"]["time"] == "booked_on"
    assert kpis["booked_total"]["grains"] == ["month", "quarter", "year"]
    sem = yaml.safe_load(result.files["metricflow/models/sem.yml"])
    assert sem["relationships"] == [
        {"from": "stg_orders", "to": "stg_customers", "on": {"buyer_id": "customer_id"}}
    ]
    assert result.files["metricflow/models/metrics.yml"].startswith(
        "# Imported from MetricFlow definitions in models/metrics.yml"
    )


def test_ratio_of_additive_inputs_is_a_ratio_else_a_derived_division() -> None:
    kpis = _kpis(
        _import("""
        metrics:
          - {name: total, type: simple, type_params: {measure: total}}
          - {name: n, type: simple, type_params: {measure: n}}
          - {name: mean, type: simple, type_params: {measure: mean}}
          - {name: aov, type: ratio, type_params: {numerator: total, denominator: n}}
          - {name: mean_per_order, type: ratio, type_params: {numerator: mean, denominator: n}}
          - name: completed_share
            type: ratio
            type_params:
              numerator: {name: n, filter: "{{ Dimension('order__status') }} = 'completed'", alias: done}
              denominator: n
        """)
    )
    assert kpis["aov"]["ratio"] == {"numerator": "total", "denominator": "n"}
    assert kpis["mean_per_order"]["derived"] == "mean / n"
    assert kpis["completed_share"]["ratio"] == {
        "numerator": "completed_share__done",
        "denominator": "n",
    }
    assert kpis["completed_share__done"]["filter"] == "status = 'completed'"


def test_derived_metrics_rename_aliases_and_reuse_an_equal_simple_metric() -> None:
    kpis = _kpis(
        _import("""
        metrics:
          - {name: total, type: simple, type_params: {measure: total}}
          - name: completed
            type: simple
            type_params: {measure: total}
            filter: "{{ Dimension('order__status') }} = 'completed'"
          - name: open_part
            type: derived
            type_params:
              expr: 1 - done / total
              metrics:
                - {name: total}
                - {name: total, alias: done, filter: "{{ Dimension('order__status') }} = 'completed'"}
        """)
    )
    assert kpis["open_part"]["derived"] == "1 - completed / total"
    assert "open_part__done" not in kpis


def test_an_offset_window_becomes_an_offset_kpi_at_the_grains_it_fits() -> None:
    kpis = _kpis(
        _import("""
        metrics:
          - {name: total, type: simple, type_params: {measure: total}}
          - name: wow
            type: derived
            type_params:
              expr: total - before
              metrics: [{name: total}, {name: total, alias: before, offset_window: 1 week}]
          - name: mom
            type: derived
            type_params:
              expr: total / before - 1
              metrics: [{name: total}, {name: total, alias: before, offset_window: 1 month}]
        """)
    )
    assert kpis["wow__before"]["offset"] == {"of": "total", "by": "1 week"}
    assert kpis["wow__before"]["grains"] == ["day", "week"]
    assert kpis["wow"]["derived"] == "total - wow__before"
    assert kpis["wow"]["grains"] == ["day", "week"]
    assert kpis["mom__before"]["offset"] == {"of": "total", "by": "1 month"}
    assert kpis["mom"]["grains"] == ["day", "month"]  # a quarter moves by whole quarters


def test_cumulative_metrics() -> None:
    kpis = _kpis(
        _import("""
        metrics:
          - {name: total, type: simple, type_params: {measure: total}}
          - {name: all_time, type: cumulative, type_params: {measure: total, cumulative_type_params: {period_agg: last}}}
          - {name: all_time_first, type: cumulative, type_params: {measure: total}}
          - {name: l2w, type: cumulative, type_params: {measure: n, cumulative_type_params: {window: 2 weeks}}}
          - {name: qtd, type: cumulative, type_params: {measure: total, grain_to_date: quarter}}
        """)
    )
    assert kpis["all_time"]["cumulative"] == "total" and "grains" not in kpis["all_time"]
    assert kpis["all_time_first"]["grains"] == ["day"]  # MetricFlow's month is its first day's
    assert kpis["l2w"]["windows"] == ["14d"] and kpis["l2w"]["grains"] == ["day"]
    assert "trailing_14_day" in kpis["l2w"]["description"]
    assert "quarter_to_date" in kpis["qtd"]["description"]


def test_conversion_metric() -> None:
    kpis = _kpis(
        _import(
            """
        metrics:
          - name: signup_to_buy
            type: conversion
            type_params:
              conversion_type_params:
                base_measure: {name: signups, filter: "{{ Dimension('customer__segment') }} = 'trade'"}
                conversion_measure: buyers
                entity: customer
                window: 1 week
        """,
            SEMANTIC.replace(
                "- {name: n, agg: count, expr: order_id}",
                "- {name: n, agg: count, expr: order_id}\n      - {name: buyers, agg: count_distinct, expr: buyer_id}",
            ),
        )
    )
    assert kpis["signup_to_buy"]["conversion"] == {
        "base": {
            "model": "stg_customers",
            "time": "joined_on",
            "entity": "customer_id",
            "filter": "segment = 'trade'",
        },
        "event": {"model": "stg_orders", "time": "ordered_at", "entity": "buyer_id"},
        "within_days": 6,  # MetricFlow: base day <= event day < base day + 7 days
    }


def test_what_cannot_be_converted_is_listed_with_place_and_reason() -> None:
    result = _import("""
        metrics:
          - {name: total, type: simple, type_params: {measure: total}}
          - {name: discrete, type: simple, type_params: {measure: p50_discrete}}
          - {name: missing, type: simple, type_params: {measure: nope}}
          - {name: by_metric, type: simple, type_params: {measure: total}, filter: "{{ Metric('total', group_by=['customer']) }} > 1"}
          - {name: two_hops, type: simple, type_params: {measure: total}, filter: "{{ Dimension('customer__region__name') }} = 'x'"}
          - {name: unknown_dim, type: simple, type_params: {measure: total}, filter: "{{ Dimension('order__colour') }} = 'x'"}
          - name: wow
            type: derived
            type_params:
              expr: total - before
              metrics: [{name: total}, {name: total, alias: before, offset_to_grain: month}]
          - {name: on_wow, type: ratio, type_params: {numerator: wow, denominator: total}}
          - {name: l1m, type: cumulative, type_params: {measure: total, window: 1 month}}
          - {name: mean_all_time, type: cumulative, type_params: {measure: mean}}
          - name: reorder
            type: conversion
            type_params:
              conversion_type_params: {base_measure: n, conversion_measure: n, entity: customer, window: 7 days}
          - name: no_window
            type: conversion
            type_params:
              conversion_type_params: {base_measure: signups, conversion_measure: n, entity: customer}
        """)
    reasons = _reasons(result)
    assert sorted(result.converted) == ["gifts", "total"]
    expected = {
        "discrete": "percentile other than the continuous, exact 50th",
        "missing": "no measure 'nope'",
        "by_metric": "unsupported Jinja in the filter: '{{ Metric(",
        "two_hops": "entity__dimension (one join at most)",
        "unknown_dim": "no dimension 'colour' reachable through entity 'order'",
        "wow": "offset_to_grain (the value at the start of an earlier period) has no equivalent",
        "on_wow": "input metric 'wow' is not converted: offset_to_grain",
        "l1m": "window '1 month'",
        "mean_all_time": "a running total of measure 'mean' (average)",
        "reorder": "is not the primary entity of the base measure's semantic model 'orders'",
        "no_window": "the window must be N days or weeks",
    }
    assert set(reasons) == set(expected)
    for name, reason in expected.items():
        assert f"warning: metric '{name}': not converted: " in reasons[name]
        assert reason in reasons[name], reasons[name]
    # each at its place: the metric (or the measure, or the key, at fault)
    assert reasons["discrete"].startswith("models/sem.yml:19:9: ")
    assert reasons["missing"].startswith("models/metrics.yml:5:5: ")
    assert reasons["by_metric"].startswith("models/metrics.yml:6:68: ")  # its filter
    assert reasons["wow"].startswith("models/metrics.yml:13:7: ")  # its input metrics


def test_the_output_is_deterministic() -> None:
    metrics = """
        metrics:
          - {name: total, type: simple, type_params: {measure: total}}
          - {name: aov, type: ratio, type_params: {numerator: total, denominator: n}}
          - {name: n, type: simple, type_params: {measure: n}}
        """
    assert _import(metrics).files == _import(metrics).files


def _resolve(kind: str, name: str, grain: str | None) -> exp.Expr:
    if name == "order__status":
        return exp.column("status")
    if name == "order__big":
        return exp.GT(this=exp.column("amount"), expression=exp.Literal.number(100))
    raise FilterError(f"unknown {name}")


@pytest.mark.parametrize(
    ("text", "sql"),
    [
        ("{{ Dimension('order__status') }} = 'x'", "status = 'x'"),
        ("{{Dimension(\"order__status\")}} in ('a', 'b')", "status IN ('a', 'b')"),
        ("not {{ Dimension('order__big') }}", "NOT (amount > 100)"),
        ("{{ TimeDimension('order__status', 'day') }} = '2024-01-01'", "status = '2024-01-01'"),
    ],
)
def test_filters_accept_the_exact_call_forms(text: str, sql: str) -> None:
    assert translate(text, "postgres", _resolve).sql("postgres") == sql


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{% if true %}1{% endif %}", "unsupported Jinja"),
        ("{{ Dimension('order__status', entity_path=['x']) }} = 1", "unsupported Jinja"),
        ("{{ Dimension('order__status').grain('day') }} = 1", "unsupported Jinja"),
        ("{{ TimeDimension('order__status') }} = 1", "needs a grain"),
        ("{{ Dimension('order__status', 'day') }} = 1", "takes one argument"),
        ("{{ Dimension('order__status') }} = 'x'; drop table t", "single SQL expression"),
        ("{{ Dimension('order__status') }} = (select 1)", "subquery"),
        ("mf__ref__0 = 1", "reserved name"),
        ("{{ Dimension('order__colour') }} = 1", "unknown order__colour"),
    ],
)
def test_filters_refuse_anything_else(text: str, reason: str) -> None:
    with pytest.raises(FilterError, match=None) as caught:
        translate(text, "postgres", _resolve)
    assert reason in str(caught.value)


def test_a_metric_that_fails_leaves_no_input_kpi_behind() -> None:
    result = _import("""
        metrics:
          - {name: n, type: simple, type_params: {measure: n}}
          - name: share
            type: ratio
            type_params:
              numerator: {name: n, filter: "{{ Dimension('order__status') }} = 'x'", alias: some}
              denominator: {name: n, filter: "{{ Metric('n') }} > 1"}
        """)
    assert "share" in _reasons(result)
    assert set(_kpis(result)) == {"n", "gifts"}


def test_a_semantic_model_that_is_not_a_ref_is_named_in_its_metrics_reasons() -> None:
    result = _import(
        "metrics:\n  - {name: total, type: simple, type_params: {measure: total}}\n",
        SEMANTIC.replace("model: ref('stg_orders')", "model: stg_orders"),
    )
    messages = [str(i) for i in result.issues]
    assert (
        "models/sem.yml:4:5: warning: semantic model 'orders': not converted: model must be ref('a_model')"
        in messages
    )
    assert (
        "measure 'total': its semantic model 'orders': not converted" in _reasons(result)["total"]
    )
