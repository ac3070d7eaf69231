"""The generated dbt models: SQL files under models/kpi/ and the YAML describing them.

Output is byte-for-byte deterministic: sorted inputs, no timestamps, fixed formatting.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import cache, partial
from importlib import resources
from pathlib import Path, PurePosixPath

import yaml
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel
from sqlglot.generator import Generator

from pipeline.engines import ENGINES, Engine
from pipeline.jinja import DELIMITERS
from pipeline.plan.models import KPI_FOLDER, ModelNode, NodeKind
from pipeline.plan.planner import Plan
from pipeline.plan.steps import MeasureGroup
from pipeline.render import builders, kinds, markers, sql, tracking
from pipeline.spec.model import Kpi, Spec

_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

KPI_DIR = Path(KPI_FOLDER)
MACROS_DIR = Path("macros") / "kpi"
GENERATED_DIRS = (KPI_DIR, MACROS_DIR, *(KPI_DIR.with_name(e.folder) for e in ENGINES.values()))
DO_NOT_EDIT = "Do not edit: change the metric files and run `kpi compile`."


Job = Callable[[], str]
PARALLEL_FROM_KPIS = 200  # below this, a worker process costs more than it saves


def render(spec: Spec, plan: Plan) -> dict[str, str]:
    """Every generated file, keyed by its path relative to the project root: one per model
    node of the plan (and per node and engine of `config.engines`), the models' properties
    and the lookback macro."""
    others = [ENGINES[name] for name in spec.config.engines]
    own = Engine(plan.dialect, target_types=())
    jobs: dict[str, Job] = {
        node.path: partial(_node, node, spec, plan, own, _enabled(own, others))
        for node in plan.models
    }
    for engine in others:
        folder = KPI_FOLDER.with_name(engine.folder)
        for node in plan.models:
            path = str(folder / PurePosixPath(node.path).relative_to(KPI_FOLDER))
            # incremental runs are not rendered for other engines yet: their models are tables
            full = replace(node, lookback_days=None)
            jobs[path] = partial(_node, full, spec, plan, engine, _enabled(engine, others))
    jobs[str(KPI_DIR / "_kpi__models.yml")] = partial(_properties, plan)
    jobs[str(MACROS_DIR / "kpi_lookback_days.sql")] = partial(_lookback_macro, spec)
    for name in TOOL_MACROS:
        jobs[str(MACROS_DIR / name)] = partial(_tool_macro, name)
    texts = _run(list(jobs.values()), parallel=len(spec.kpis) >= PARALLEL_FROM_KPIS)
    return dict(zip(jobs, texts, strict=True))


Query = Callable[[ModelNode, Spec, Plan], exp.Expr]
QUERIES: dict[NodeKind, Query] = {
    NodeKind.MEASURES: lambda n, s, p: sql.measure_group(_group(n), p.week_start, n.lookback_days),
    NodeKind.VALUES: lambda n, s, p: sql.simple_values(_group(n), list(n.steps)),
    NodeKind.KIND_VALUES: lambda n, s, p: kinds.values(n.steps[0], p),
    NodeKind.COMPOSITE: lambda n, s, p: sql.composite_values(list(n.steps), p),
    NodeKind.DISTINCT_WINDOWS: lambda n, s, p: tracking.distinct_windows(n.steps[0], p),
    NodeKind.CATALOG: lambda n, s, p: sql.kpi_catalog(s),
    NodeKind.OBSERVATIONS: lambda n, s, p: tracking.observations(p),
    NodeKind.TARGETS: lambda n, s, p: tracking.targets(s),
    NodeKind.KPI_VALUES: lambda n, s, p: tracking.kpi_values(s, p),
    NodeKind.KPI_WINDOWS: lambda n, s, p: tracking.kpi_windows(s, p),
    NodeKind.WIDE: lambda n, s, p: sql.wide(str(n.grain), list(n.kpis)),
}


def _group(node: ModelNode) -> MeasureGroup:
    assert node.group is not None
    return node.group


def _node(node: ModelNode, spec: Spec, plan: Plan, engine: Engine, enabled: str | None) -> str:
    if node.kind is NodeKind.ACTIVITY:
        text = _activity_model(node, plan, engine)
    elif node.kind is NodeKind.ENTITIES:
        text = _entities_model(node, plan, engine)
    else:
        text = _model(node, QUERIES[node.kind](node, spec, plan), engine)
    if enabled is None:
        return text
    head, config, rest = text.partition("{{ config(")
    return f"{head}{config}enabled={enabled}, {rest}"


def _enabled(engine: Engine, others: Sequence[Engine]) -> str | None:
    """The Jinja condition a model of `engine` is enabled on (None: always): an engine's
    models on its adapters' targets, the project's own on every other target."""
    if not others:
        return None
    if engine.target_types:
        return f"target.type in {sorted(engine.target_types)}"
    return f"target.type not in {sorted(t for e in others for t in e.target_types)}"


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
    (macros/kpi/kpi_incremental.sql): they follow the KPI models' setting."""
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


# macros the generated models call, shipped with the tool and written beside them
TOOL_MACROS = ("kpi_incremental.sql", "append_in_place.sql", "kpi_tests.sql")


def _tool_macro(name: str) -> str:
    text = resources.files("pipeline.render").joinpath("macros", name).read_text(encoding="utf-8")
    return f"-- Generated by `kpi compile` (the tool's macros).\n-- {DO_NOT_EDIT}\n{text}"


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


def _model(node: ModelNode, tree: exp.Expr, engine: Engine) -> str:
    body = _sql(tree, engine, MEASURES_RUN)
    config, summary = "{{ config(materialized='" + node.materialization + "') }}", node.summary
    if node.lookback_days is not None:
        config = (
            _incremental_config(node.unique_key)
            + "\n{% set recompute_from = kpi_recompute_from() %}"
        )
        summary += f" Incremental: recomputes the last {node.lookback_days} day(s) and their periods."
    return f"{_header(node.files, summary)}\n{config}\n\n{body}\n"


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


@dataclass(frozen=True)
class Run:
    """How a model's Jinja speaks of a daily run: the variable its config sets to the first
    recomputed day, the test of a daily run (dbt's, or the tool's for append_in_place
    models, which dbt's does not know) and what that run's branch sets first."""

    recompute_from: str = "recompute_from"
    test: str = "is_incremental()"
    sets: str = ""


MEASURES_RUN = Run()
ACTIVITY_RUN = Run(
    "first_recomputed",
    "recomputes()",
    "{% set first_recomputed = recompute_from('first_day') or 'cast(null as date)' %}",
)
ENTITIES_RUN = Run("first_recomputed")


def _sql(tree: exp.Expr, engine: Engine, run: Run) -> str:
    """A tree's SQL in `engine`'s dialect, its markers printed as the compiler's Jinja (each
    tree is rendered once); a construct the dialect cannot print is an error."""
    generator = Dialect.get_or_raise(engine.name).generator(
        pretty=True, max_text_width=SHORT_LINE, unsupported_level=ErrorLevel.RAISE
    )
    printed: list[str] = []  # the Jinja printed, in order
    # per instance: sqlglotc's generators are compiled classes
    readable = _readable(engine.name, printed)
    generator._dispatch = {**readable, **_jinja(run, printed, readable)}
    text = generator.generate(engine.rewrite(_dbt_nodes(tree)), copy=False)
    return _plain(text, printed)


def _dbt_nodes(tree: exp.Expr) -> exp.Expr:
    """The tree with render/sql.py's placeholders as marker nodes (render/markers.py)."""
    for n in list(tree.find_all(exp.Table, exp.Column)):
        if isinstance(n, exp.Table) and isinstance(n.this, exp.Identifier):
            name = n.name
            if name.startswith(builders.REF_PREFIX):
                n.set("this", markers.ref(name.removeprefix(builders.REF_PREFIX)))
            elif name == builders.THIS:
                n.set("this", markers.this())
            elif name.startswith(builders.INCREMENTAL_PREFIX):
                increment, full = sql.incremental_blocks()[name.removeprefix(builders.INCREMENTAL_PREFIX)]
                n.set("this", markers.choice_of(_dbt_nodes(increment), _dbt_nodes(full)))
        elif isinstance(n, exp.Column) and n.name == builders.RECOMPUTE_FROM and not n.table:
            marker = markers.recompute_from()
            if n is tree:
                return marker
            n.replace(marker)
    return tree


SHORT_LINE = 100  # a piece of SQL up to this width stays on one line


@cache
def _dispatch(dialect: str) -> Mapping[type[exp.Expr], Callable[..., str]]:
    return dict(Dialect.get_or_raise(dialect).generator(pretty=True)._dispatch)


def _readable(dialect: str, printed: list[str]) -> dict[type[exp.Expr], Callable[..., str]]:
    """The dialect's SQL generation with a reviewer's line breaks: each row of a VALUES list
    on one line (data read as data: one target, one catalog entry per line in a diff); a
    short projection or GROUP BY of plain columns, a short condition, parenthesis or VALUES
    list on one line; a long CASE with each WHEN and its THEN on one line. A piece printed
    twice (to try a layout) keeps in `printed` only the Jinja of the print it keeps."""
    base = _dispatch(dialect)
    dispatch = dict(base)

    def values_row(gen: Generator, expression: exp.Tuple) -> str:
        if isinstance(expression.parent, exp.Values):
            return f"({gen.expressions(expression, flat=True)})"
        return base[exp.Tuple](gen, expression)

    def select(gen: Generator, expression: exp.Select) -> str:
        columns = expression.expressions
        lines = _column_lines(gen, columns)
        if len(lines) == len(columns):
            return base[exp.Select](gen, expression)
        expression.set("expressions", lines)  # each run of plain columns printed as one
        try:
            return base[exp.Select](gen, expression)
        finally:
            expression.set("expressions", columns)

    def group(gen: Generator, expression: exp.Group) -> str:
        line = _columns_line(gen, expression.expressions)
        if line is None or len(expression.args) > 1:  # grouping sets, rollup, ALL...
            return base[exp.Group](gen, expression)
        return gen.seg(f"GROUP BY {line}")

    def condition(keyword: str) -> Callable[[Generator, exp.Expr], str]:
        def render(gen: Generator, expression: exp.Expr) -> str:
            mark = len(printed)
            text = gen.sql(expression, "this")
            if "\n" in text or len(text) > SHORT_LINE:
                del printed[mark:]
                return base[type(expression)](gen, expression)
            return gen.seg(f"{keyword} {text}")

        return render

    def flat_if_short(kind: type[exp.Expr]) -> Callable[[Generator, exp.Expr], str]:
        def render(gen: Generator, expression: exp.Expr) -> str:
            mark = len(printed)
            text = base[kind](gen, expression)
            if gen.pretty and "\n" in text and len(" ".join(text.split())) <= SHORT_LINE:
                del printed[mark:]
                gen.pretty = False
                try:
                    return base[kind](gen, expression)
                finally:
                    gen.pretty = True
            return text

        return render

    dispatch.update(
        {
            exp.Tuple: values_row,
            exp.Select: select,
            exp.Group: group,
            exp.Where: condition("WHERE"),
            exp.Having: condition("HAVING"),
            exp.Paren: flat_if_short(exp.Paren),
            exp.Values: flat_if_short(exp.Values),
            exp.Case: _case,
        }
    )
    return dispatch


def _case(gen: Generator, expression: exp.Case) -> str:
    """A CASE on one line when short, else one line per WHEN and its THEN (when they fit)."""
    this = gen.sql(expression, "this")
    lines = [f"CASE {this}" if this else "CASE"]
    for branch in expression.args["ifs"]:
        when, then = f"WHEN {gen.sql(branch, 'this')}", f"THEN {gen.sql(branch, 'true')}"
        pair = f"{when} {then}"
        lines += [pair] if "\n" not in pair and len(pair) <= SHORT_LINE else [when, then]
    if default := gen.sql(expression, "default"):
        lines.append(f"ELSE {default}")
    lines.append("END")
    if not gen.pretty or sum(len(line) for line in lines) <= SHORT_LINE:
        return " ".join(lines)
    return gen.indent("\n".join(lines), skip_first=True, skip_last=True)


def _columns_line(gen: Generator, columns: Sequence[exp.Expr]) -> str | None:
    """Plain columns on one line, when they fit."""
    if not columns or not all(type(c) is exp.Column for c in columns):
        return None
    line = ", ".join(gen.sql(c) for c in columns)
    return line if len(line) <= SHORT_LINE else None


def _column_lines(gen: Generator, projection: Sequence[exp.Expr]) -> list[exp.Expr]:
    """The projection with each run of plain columns (the keys of a row, say) on lines of
    up to SHORT_LINE characters; other expressions keep a line each."""
    out: list[exp.Expr] = []
    run: list[str] = []

    def close() -> None:
        if run:
            out.append(exp.var(", ".join(run)))
            run.clear()

    for item in projection:
        if type(item) is not exp.Column or item.comments:
            close()
            out.append(item)
            continue
        text = gen.sql(item)
        if run and len(", ".join([*run, text])) > SHORT_LINE:
            close()
        run.append(text)
    close()
    return out if len(out) < len(projection) else list(projection)


NAME = re.compile(r"[a-z0-9_]+")  # what a model or column name inside our Jinja may be


def _name(text: str) -> str:
    if not NAME.fullmatch(text):
        raise ValueError(f"'{text}' cannot be named inside the generated Jinja")
    return text


def _jinja(
    run: Run, printed: list[str], base: Mapping[type[exp.Expr], Callable[..., str]]
) -> dict[type[exp.Expr], Callable[..., str]]:
    """How the marker nodes (render/markers.py) print: as the compiler's own fixed Jinja,
    each piece recorded in `printed`; other placeholders and IFs as the dialect prints them."""
    def tag(jinja: str) -> str:
        printed.append(jinja)
        return jinja

    def placeholder(gen: Generator, node: exp.Placeholder) -> str:
        kind = markers.kind_of(node)
        if kind == markers.REF:
            return tag("{{ ref('" + _name(node.name) + "') }}")
        if kind == markers.THIS:
            return tag("{{ this }}")
        if kind == markers.RECOMPUTE_FROM:
            return tag("{{ " + run.recompute_from + " }}")
        if kind == markers.RECOMPUTED_DAYS:
            return tag("{{ on_or_after_recomputed('" + _name(node.name) + "', 'first_day') }}")
        return str(base[exp.Placeholder](gen, node))

    def choice(gen: Generator, node: exp.If) -> str:
        """`(`, then `{% if <daily run> %}` the increment's query `{% else %}` the full
        build's `{% endif %}`, indented as a subquery, then `)`."""
        if not markers.is_choice(node):
            return str(base[exp.If](gen, node))
        lines = [
            tag("{% if " + run.test + " %}"),
            *([tag(run.sets)] if run.sets else []),
            gen.sql(node, "true"),
            tag("{% else %}"),
            gen.sql(node, "false"),
            tag("{% endif %}"),
        ]
        body = gen.indent("\n".join(lines))
        return f"({gen.sep('')}{body}{gen.seg(')', sep='')}"

    return {exp.Placeholder: placeholder, exp.If: choice}


def _plain(text: str, ours: Sequence[str] = ()) -> str:
    """`text`, checked to hold no Jinja delimiter but those of `ours` (the Jinja the
    generator printed into it). Every piece of a generated file that can carry text from
    the metric files (SQL from trees, header comments, the YAML) passes here: dbt runs no
    Jinja but the compiler's own, whatever the loader let by."""
    for delimiter in DELIMITERS:
        if _occurrences(text, delimiter) != sum(_occurrences(j, delimiter) for j in ours):
            line = next(
                (
                    line
                    for line in text.splitlines()
                    if _occurrences(line, delimiter)
                    > sum(_occurrences(j, delimiter) * line.count(j) for j in set(ours))
                ),
                next(line for line in text.splitlines() if delimiter in line),
            )
            raise ValueError(f"generated text would hold Jinja ('{delimiter}'): {line.strip()}")
    return text


def _occurrences(text: str, delimiter: str) -> int:
    """How often `delimiter` starts in `text`, overlaps counted ('{{{' holds two '{{')."""
    count, at = 0, text.find(delimiter)
    while at >= 0:
        count, at = count + 1, text.find(delimiter, at + 1)
    return count


def _activity_model(node: ModelNode, plan: Plan, engine: Engine) -> str:
    """The active entities of retention and churn KPIs, kept by first day when incremental:
    a pre-hook deletes the stored rows from the first recomputed day on
    (macros/kpi/kpi_incremental.sql), the model appends what the rows of those days add."""
    lookback_days, step = node.lookback_days, node.steps[0]
    # the same rows, entity, slices and grains for all
    query = kinds.activity(step, plan, incremental=lookback_days is not None)
    body = _sql(query, engine, ACTIVITY_RUN)
    config, summary = TABLE_CONFIG, node.summary
    if lookback_days is not None:
        config = (
            "{{ config(materialized='append_in_place', "
            "pre_hook=\"{{ delete_recomputed_days('first_day') }}\") }}"
        )
        summary += (
            f" Incremental: recomputes the entities first seen in the last {lookback_days} day(s)."
        )
    return _header(node.files, summary) + f"\n{config}\n\n{body}\n"


def _entities_model(node: ModelNode, plan: Plan, engine: Engine) -> str:
    """The first days of lifetime KPIs' entities, by entity: incremental with a lookback,
    a daily run recomputes the entities its days touch (kinds.entities)."""

    def body(incremental: bool) -> str:
        query = kinds.entities(node.steps, plan, incremental=incremental)
        return _sql(query, engine, ENTITIES_RUN)

    lookback_days, summary = node.lookback_days, node.summary
    if lookback_days is None:
        config, text = TABLE_CONFIG, body(False)
    else:
        config = (
            _incremental_config(node.unique_key, "delete from {{ this }} where first_day is null")
            + "\n{% set first_recomputed = recompute_from('last_day') if is_incremental() else none %}"
        )
        text = _if_incremental(body(True), body(False), "first_recomputed is not none")
        summary += (
            f" Incremental: recomputes the entities with rows in the last {lookback_days} day(s)."
        )
    return _header(node.files, summary) + f"\n{config}\n\n{text}\n"


def _if_incremental(increment: str, full: str, test: str) -> str:
    """SQL for a run over the stored table, else for a full build."""
    return "{% if " + test + " %}\n" + increment + "\n{% else %}\n" + full + "\n{% endif %}"


def _properties(plan: Plan) -> str:
    """The generated models' YAML: description, key and tests of each, from the plan's nodes."""
    models = [_model_properties(n) for n in sorted(plan.models, key=lambda n: n.path)]
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


def _model_properties(node: ModelNode) -> dict:
    entry: dict = {"name": node.name, "description": node.description}
    key = list(node.unique_key)
    if len(key) > 1:
        entry["data_tests"] = [
            {"kpi_unique_rows": {"arguments": {"columns": key}}}
        ]
    references = dict(node.references)
    columns: list[dict] = []
    for name in (*key, *node.not_null):
        tests: list = ["unique", "not_null"] if key == [name] else ["not_null"]
        if name == "grain" and node.grains:
            tests.append({"accepted_values": {"arguments": {"values": list(node.grains)}}})
        if name in references:
            to = f"ref('{references[name]}')"
            tests.append({"relationships": {"arguments": {"to": to, "field": name}}})
        columns.append({"name": name, "data_tests": tests})
    columns += [
        {"name": k.name, "description": _describe(k)} for k in sorted(node.kpis, key=lambda k: k.name)
    ]
    entry["columns"] = columns
    return entry


def _describe(kpi: Kpi) -> str:
    return f"{kpi.label} ({kpi.format}). {kpi.description}".strip()
