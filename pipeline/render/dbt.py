"""The generated dbt models: SQL files under models/kpi/ and the YAML describing them.

Output is byte-for-byte deterministic: sorted inputs, no timestamps, fixed formatting.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import yaml
from sqlglot import exp

from pipeline.jinja import delimiter_in
from pipeline.plan.planner import COMPOSITE_KINDS, COMPOSITE_VALUES, Plan, Step
from pipeline.render import kinds, sql, tracking
from pipeline.spec.model import GRAINS, Kpi, Spec

_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

KPI_DIR = Path("models") / "kpi"
MEASURES_DIR = KPI_DIR / "measures"
VALUES_DIR = KPI_DIR / "values"
WINDOWS_DIR = KPI_DIR / "windows"
ACTIVITY_DIR = KPI_DIR / "activity"
ENTITIES_DIR = KPI_DIR / "entities"
WIDE_DIR = KPI_DIR / "wide"
MACROS_DIR = Path("macros") / "kpi"
GENERATED_DIRS = (KPI_DIR, MACROS_DIR)
DO_NOT_EDIT = "Do not edit: change the metric files and run `kpi compile`."


Job = Callable[[], str]
PARALLEL_FROM_KPIS = 200  # below this, a worker process costs more than it saves


def render(spec: Spec, plan: Plan) -> dict[str, str]:
    """Every generated file, keyed by its path relative to the project root."""
    jobs: dict[str, Job] = {}
    all_files = sorted({k.file for k in spec.kpis})
    dialect = plan.dialect
    for group in plan.groups:
        steps = [s for s in plan.steps if s.group is not None and s.group.name == group.name]
        # incremental runs find their window from the stored day rows
        group_lookback = plan.lookback_for(group.grains)
        jobs[str(MEASURES_DIR / f"{group.name}.sql")] = partial(
            _model,
            partial(sql.measure_group, group, plan.week_start, group_lookback),
            dialect,
            group.files,
            f"Measures over {group.model} by {group.time}: one scan for {len(group.measures)} KPI(s).",
            lookback_days=group_lookback,
        )
        jobs[str(VALUES_DIR / f"{group.values_model}.sql")] = partial(
            _model,
            partial(sql.simple_values, group, steps),
            dialect,
            group.files,
            f"Values of the KPIs measured over {group.model}.",
        )
    for step in plan.steps:
        if step.kpi.kind not in ("simple", *COMPOSITE_KINDS):
            jobs[str(VALUES_DIR / f"{step.values_model}.sql")] = partial(
                _model,
                partial(kinds.values, step, plan),
                dialect,
                [step.kpi.file],
                f"Values of {step.kpi.name}, a {step.kpi.kind} KPI.",
            )
    composites = [s for s in plan.steps if s.kpi.kind in COMPOSITE_KINDS]
    if composites:
        jobs[str(VALUES_DIR / f"{COMPOSITE_VALUES}.sql")] = partial(
            _model,
            partial(sql.composite_values, composites, plan),
            dialect,
            sorted({s.kpi.file for s in composites}),
            "Values of ratio and derived KPIs, computed from their inputs after aggregation.",
        )
    for step in tracking.distinct_window_steps(plan):
        jobs[str(WINDOWS_DIR / f"{tracking.distinct_windows_model(step.kpi.name)}.sql")] = partial(
            _model,
            partial(tracking.distinct_windows, step, plan),
            dialect,
            [step.kpi.file],
            f"Trailing windows and period to date of {step.kpi.name}, recounted from rows.",
            lookback_days=plan.lookback_for(step.kpi.grains),
            unique_key=tracking.WINDOW_KEYS,
        )
    for name, steps in kinds.activity_models(plan).items():
        jobs[str(ACTIVITY_DIR / f"{name}.sql")] = partial(
            _activity_model, steps, plan, plan.lookback_days
        )
    for name, steps in kinds.lifetime_models(plan).items():
        jobs[str(ENTITIES_DIR / f"{name}.sql")] = partial(
            _entities_model, steps, plan, plan.lookback_days
        )
    jobs[str(KPI_DIR / "kpi_catalog.sql")] = partial(
        _model,
        partial(sql.kpi_catalog, spec),
        dialect,
        all_files,
        "One row per KPI definition.",
    )
    jobs[str(KPI_DIR / "kpi_values.sql")] = partial(
        _model,
        partial(tracking.kpi_values, spec, plan),
        dialect,
        all_files,
        "Every KPI at every grain and slice, with comparisons, target and status (long table).",
    )
    jobs[str(KPI_DIR / "kpi_windows.sql")] = partial(
        _model,
        partial(tracking.kpi_windows, spec, plan),
        dialect,
        all_files,
        "Trailing windows and period-to-date values of KPIs that add up over periods.",
    )
    for grain in GRAINS:
        kpis = [k for k in spec.kpis if grain in k.grains]
        if kpis:
            jobs[str(WIDE_DIR / f"{sql.WIDE_NAMES[grain]}.sql")] = partial(
                _model,
                partial(sql.wide, grain, kpis),
                dialect,
                sorted({k.file for k in kpis}),
                f"One row per {grain}, one column per KPI (totals).",
            )
    jobs[str(KPI_DIR / "_kpi__models.yml")] = partial(_properties, spec, plan)
    jobs[str(MACROS_DIR / "kpi_lookback_days.sql")] = partial(_lookback_macro, spec)
    texts = _run(list(jobs.values()), parallel=len(spec.kpis) >= PARALLEL_FROM_KPIS)
    return dict(zip(jobs, texts, strict=True))


_JOBS: list[Job] = []  # read by forked workers, which inherit the parent's memory


def _run_job(index: int) -> str:
    return _JOBS[index]()


def _run(jobs: list[Job], *, parallel: bool) -> list[str]:
    """Run render jobs, on every core for large projects; results keep the jobs' order."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if not parallel or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [job() for job in jobs]
    _JOBS[:] = jobs
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            return list(pool.map(_run_job, range(len(jobs))))
    finally:
        _JOBS.clear()


def _lookback_macro(spec: Spec) -> str:
    """The project's incremental lookback, for the hand-written fact marts
    (macros/incremental_facts.sql): they follow the KPI models' setting."""
    days = spec.config.incremental_lookback_days
    source = (
        f"from {spec.config.location.file} (config.incremental.lookback_days)."
        if days is not None and spec.config.location
        else "(no metric file sets config.incremental.lookback_days)."
    )
    return "\n".join(
        [
            _plain(f"-- Generated by `kpi compile` {source}"),
            f"-- {DO_NOT_EDIT}",
            "{#- Days a daily run recomputes before the newest stored day; none: every model",
            "    is a table rebuilt in full. -#}",
            "{% macro kpi_lookback_days() %}{{ return("
            + ("none" if days is None else str(days))
            + ") }}{% endmacro %}",
            "",
        ]
    )


TABLE_CONFIG = "{{ config(materialized='table') }}"


def _incremental_config(unique_key: Sequence[str], post_hook: str | None = None) -> str:
    hook = "" if post_hook is None else f', post_hook="{post_hook}"'
    return (
        "{{ config(materialized='incremental', incremental_strategy='delete+insert', "
        "unique_key=["
        + ", ".join(f"'{k}'" for k in unique_key)
        + "], on_schema_change='fail'"
        + hook
        + ") }}"
    )


def _model(
    build: Callable[[], exp.Expr],
    dialect: str,
    sources: list[str] | tuple[str, ...],
    summary: str,
    *,
    lookback_days: int | None = None,
    unique_key: Sequence[str] = sql.JOIN_KEYS,
) -> str:
    body = _refs(_sql(build(), dialect))
    config = TABLE_CONFIG
    if lookback_days is not None:
        body = _incremental(body, dialect)
        config = (
            _incremental_config(unique_key) + "\n{% set recompute_from = kpi_recompute_from() %}"
        )
        summary += f" Incremental: recomputes the last {lookback_days} day(s) and their periods."
    return f"{_header(sources, summary)}\n{config}\n\n{body}\n"


def _header(sources: Sequence[str], summary: str) -> str:
    return _plain(
        "\n".join(
            [
                "-- Generated by `kpi compile` from:",
                *(f"--   {source}" for source in sources),
                f"-- {summary}",
                f"-- {DO_NOT_EDIT}",
            ]
        )
    )


def _sql(tree: exp.Expr, dialect: str) -> str:
    """A tree's SQL, before the renderer puts its Jinja in (each tree is rendered once)."""
    return _plain(tree.sql(dialect=dialect, pretty=True, copy=False))


def _plain(text: str) -> str:
    """`text`, checked to hold no Jinja delimiter. Every piece of a generated file that can
    carry text from the metric files (SQL from trees, header comments, the YAML) passes here
    before the renderer adds its own Jinja: dbt runs no other, whatever the loader let by."""
    if delimiter := delimiter_in(text):
        line = next(line for line in text.splitlines() if delimiter in line)
        raise ValueError(f"generated text would hold Jinja ('{delimiter}'): {line.strip()}")
    return text


def _activity_model(steps: list[Step], plan: Plan, lookback_days: int | None) -> str:
    """The active entities of retention and churn KPIs, kept by first day when incremental:
    a pre-hook deletes the stored rows from the first recomputed day on
    (macros/incremental_facts.sql), the model appends what the rows of those days add."""
    query = kinds.activity(steps[0], plan)  # the same rows, entity, slices and grains for all
    body = _refs(_sql(query, plan.dialect))
    stored = "select * from sightings where false"
    if lookback_days is None:
        config = TABLE_CONFIG
        body = re.sub(r"\s+AND " + re.escape(kinds.SINCE) + r"\w+", "", body)
    else:
        config = (
            "{{ config(materialized='append_in_place', "
            "pre_hook=\"{{ delete_recomputed_days('first_day') }}\") }}"
        )
        body = re.sub(
            re.escape(kinds.SINCE) + r"(\w+)",
            r"{{ on_or_after_recomputed('\1', 'first_day') }}",
            body,
        )
        rows = _sql(kinds.activity_stored_rows(steps[0], plan), plan.dialect)
        increment = (
            "{% set first_recomputed = recompute_from('first_day') or 'cast(null as date)' %}\n"
            + _stored_state(rows)
        )
        stored = _if_incremental(increment, stored, "recomputes()")
    body = body.replace(kinds.STORED, "(\n" + stored + "\n)")
    names = ", ".join(s.kpi.name for s in steps)
    summary = f"Active entities of {names}, by period, with their first day there."
    if lookback_days is not None:
        summary += (
            f" Incremental: recomputes the entities first seen in the last {lookback_days} day(s)."
        )
    return _header(sorted({s.kpi.file for s in steps}), summary) + f"\n{config}\n\n{body}\n"


def _entities_model(steps: list[Step], plan: Plan, lookback_days: int | None) -> str:
    """The first days of lifetime KPIs' entities, by entity: incremental with a lookback,
    a daily run recomputes the entities its days touch (kinds.entities)."""

    def body(incremental: bool) -> str:
        query = kinds.entities(steps, plan, incremental=incremental)
        return _refs(_sql(query, plan.dialect))

    names = ", ".join(s.kpi.name for s in steps)
    summary = f"First days of the entities of {names}, and their amounts within each horizon."
    if lookback_days is None:
        config, text = TABLE_CONFIG, body(False)
    else:
        config = (
            _incremental_config(["entity"], "delete from {{ this }} where first_day is null")
            + "\n{% set first_recomputed = recompute_from('last_day') if is_incremental() else none %}"
        )
        text = _if_incremental(
            _stored_state(body(True)), body(False), "first_recomputed is not none"
        )
        summary += (
            f" Incremental: recomputes the entities with rows in the last {lookback_days} day(s)."
        )
    return _header(sorted({s.kpi.file for s in steps}), summary) + f"\n{config}\n\n{text}\n"


def _stored_state(body: str) -> str:
    """The placeholders of a model kept as state (activity, entities) become Jinja: the
    stored table and the `first_recomputed` day the model's config sets."""
    return body.replace(sql.THIS, "{{ this }}").replace(
        sql.RECOMPUTE_FROM, "{{ first_recomputed }}"
    )


def _incremental(body: str, dialect: str) -> str:
    """Placeholders of an incremental model become `{% if is_incremental() %}`
    blocks (the stored table `{{ this }}` is read only when it exists), and the first
    recomputed day the run's literal (macros/incremental_facts.sql)."""
    body = body.replace(sql.RECOMPUTE_FROM, "{{ recompute_from }}")
    for name, (on_increment, on_full) in sql.incremental_blocks().items():
        increment, full = (
            _sql(q, dialect).replace(sql.THIS, "{{ this }}") for q in (on_increment, on_full)
        )
        body = body.replace(
            sql.INCREMENTAL_PREFIX + name, "(\n" + _if_incremental(increment, full) + "\n)"
        )
    return body


def _if_incremental(increment: str, full: str, test: str = "is_incremental()") -> str:
    """SQL for a run over the stored table (`{{ this }}` exists), else for a full build
    (`test`: recomputes() for append_in_place models, which dbt's test does not know)."""
    return "{% if " + test + " %}\n" + increment + "\n{% else %}\n" + full + "\n{% endif %}"


def _refs(body: str) -> str:
    """Placeholders for models become dbt refs (the only Jinja in generated SQL)."""
    out = []
    for token in body.split(sql.REF_PREFIX)[1:]:
        name_end = len(token) - len(token.lstrip("abcdefghijklmnopqrstuvwxyz0123456789_"))
        out.append("{{ ref('" + token[:name_end] + "') }}" + token[name_end:])
    return body.split(sql.REF_PREFIX)[0] + "".join(out)


def _properties(spec: Spec, plan: Plan) -> str:
    keys = ["grain", "period_start", "dimension", "dimension_value"]
    models: list[dict] = []
    for group in plan.groups:
        models.append(
            {
                "name": group.name,
                "description": f"Generated. Partial aggregates of {group.model} by {group.time} for "
                + ", ".join(m.name for m in group.measures)
                + ". Every period between the data's first and last day, every slice.",
                "data_tests": [
                    {
                        "unique_combination_of_columns": {
                            "arguments": {"combination_of_columns": keys}
                        }
                    }
                ],
                "columns": _key_columns(group.grains),
            }
        )
    values_models = sorted({s.values_model for s in plan.steps})
    for name in values_models:
        models.append(
            {
                "name": name,
                "description": "Generated. Rows of the long KPI table for "
                + ", ".join(s.kpi.name for s in plan.steps if s.values_model == name)
                + ".",
                "data_tests": [
                    {
                        "unique_combination_of_columns": {
                            "arguments": {"combination_of_columns": ["kpi", *keys]}
                        }
                    }
                ],
                "columns": [{"name": "kpi", "data_tests": ["not_null"]}, *_key_columns(GRAINS)],
            }
        )
    for name, steps in kinds.activity_models(plan).items():
        models.append(
            {
                "name": name,
                "description": "Generated. The entities active in each period for "
                + ", ".join(s.kpi.name for s in steps)
                + ": the first day each was active there, and whether it was active in the period before.",
                "data_tests": [
                    {
                        "unique_combination_of_columns": {
                            "arguments": {"combination_of_columns": list(kinds.ACTIVITY_KEYS)}
                        }
                    }
                ],
                "columns": [
                    *_key_columns(steps[0].kpi.grains)[:2],
                    *_key_columns(steps[0].kpi.grains)[3:],
                    {"name": "first_day", "data_tests": ["not_null"]},
                ],
            }
        )
    for name, steps in kinds.lifetime_models(plan).items():
        models.append(
            {
                "name": name,
                "description": "Generated. One row per entity of "
                + ", ".join(s.kpi.name for s in steps)
                + " with kept rows: its first and last day, and its amount within each KPI's horizon.",
                "columns": [
                    {"name": "entity", "data_tests": ["unique", "not_null"]},
                    {"name": "first_day", "data_tests": ["not_null"]},
                ],
            }
        )
    models.append(
        {
            "name": "kpi_catalog",
            "description": "Generated. One row per KPI: label, description, category, owner, format, grains, dimensions, metric file.",
            "columns": [{"name": "kpi", "data_tests": ["unique", "not_null"]}],
        }
    )
    models.append(
        {
            "name": "kpi_values",
            "description": "Generated. The long KPI table: one row per KPI, grain, period and slice; dimension 'total' is the unsliced value.",
            "data_tests": [
                {
                    "unique_combination_of_columns": {
                        "arguments": {"combination_of_columns": ["kpi", *keys]}
                    }
                }
            ],
            "columns": [
                {
                    "name": "kpi",
                    "data_tests": [
                        "not_null",
                        {
                            "relationships": {
                                "arguments": {"to": "ref('kpi_catalog')", "field": "kpi"}
                            }
                        },
                    ],
                },
                *_key_columns(GRAINS),
            ],
        }
    )
    for grain in GRAINS:
        if any(grain in k.grains for k in spec.kpis):
            models.append(
                {
                    "name": sql.WIDE_NAMES[grain],
                    "description": f"Generated. One row per {grain}, one column per KPI tracked by {grain} (totals only).",
                    "columns": [
                        {"name": "period_start", "data_tests": ["unique", "not_null"]},
                        {"name": "period_end", "data_tests": ["not_null"]},
                        *(
                            {"name": k.name, "description": _describe(k)}
                            for k in sorted(spec.kpis, key=lambda k: k.name)
                            if grain in k.grains
                        ),
                    ],
                }
            )
    header = f"# Generated by `kpi compile`. {DO_NOT_EDIT}\n"
    body = _plain(
        yaml.dump(
            {"version": 2, "models": models},
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            width=100,
        )
    )  # dbt renders descriptions with Jinja
    return header + body


def _key_columns(grains: tuple[str, ...] | list[str]) -> list[dict]:
    return [
        {
            "name": "grain",
            "data_tests": [
                "not_null",
                {"accepted_values": {"arguments": {"values": list(grains)}}},
            ],
        },
        {"name": "period_start", "data_tests": ["not_null"]},
        {"name": "period_end", "data_tests": ["not_null"]},
        {"name": "dimension", "data_tests": ["not_null"]},
        {"name": "dimension_value", "data_tests": ["not_null"]},
    ]


def _describe(kpi: Kpi) -> str:
    return f"{kpi.label} ({kpi.format}). {kpi.description}".strip()
