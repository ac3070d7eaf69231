{#-
    Daily runs of a project with `config.incremental.lookback_days` (kpi_lookback_days()):
    the generated KPI models use these macros, and so can the project's own large fact
    marts; the generated kpi_activity__* models use the same window (kept by their
    `first_day`).

    Without a lookback (kpi_lookback_days() is none) such marts are tables rebuilt in full.
    With one they are `append_in_place` models (append_in_place.sql): a run deletes the
    stored rows of the days from `lookback_days` before the newest stored day onwards
    (pre-hook, in the model's transaction), then appends the source rows of those days and
    of every later day. Rows of earlier days stay as stored,
    so a late change (a status, a shipment, a return) reaches a mart only while its day is
    inside the window, as for the KPI models; `dbt run --full-refresh` rebuilds everything.

    In a model:
        {{ config(materialized=fact_materialization(),
                  pre_hook="{{ delete_recomputed_days('order_date') }}") }}
        ... from {{ ref('stg_shop__orders') }}
        {{ where_recomputed('ordered_at', 'order_date') }}
-#}

{% macro fact_materialization() -%}
    {{ return('table' if kpi_lookback_days() is none else 'append_in_place') }}
{%- endmacro %}


{#- true on a run over a stored table with a lookback, unless --full-refresh (never in dbt
    unit tests, which have no `this`); dbt's is_incremental() knows only its own
    materialization -#}
{% macro recomputes() -%}
    {%- if kpi_lookback_days() is none or not execute or this is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set stored = adapter.get_relation(this.database, this.schema, this.identifier) -%}
    {{ return(stored is not none and stored.type == 'table' and not should_full_refresh()) }}
{%- endmacro %}


{#- The first day a run recomputes, as a date literal (Parquet sources then skip the
    row groups of earlier days); none when the stored table is empty. -#}
{% macro recompute_from(column) -%}
    {%- set query -%}
        select cast(max({{ column }}) as date) - {{ kpi_lookback_days() }} from {{ this }}
    {%- endset -%}
    {%- set first = run_query(query).columns[0].values()[0] -%}
    {{ return(none if first is none else "date '" ~ first ~ "'") }}
{%- endmacro %}


{#- The first day a generated incremental KPI model (measures, distinct windows)
    recomputes, as a date literal: `lookback_days` before the newest day of its stored
    `grain = 'day'` rows, not before the first; NULL on a full build or over an empty table
    (everything is recomputed). The models compare their columns with expressions of this
    constant, so that scans skip the rows of earlier days. -#}
{% macro kpi_recompute_from() -%}
    {%- if is_incremental() -%}
        {%- set query -%}
            select greatest(max(period_start) - {{ kpi_lookback_days() }}, min(period_start))
            from {{ this }} where grain = 'day'
        {%- endset -%}
        {%- set first = run_query(query).columns[0].values()[0] -%}
        {%- if first is not none -%}
            {{ return("cast('" ~ first ~ "' as date)") }}
        {%- endif -%}
    {%- endif -%}
    {{ return('cast(null as date)') }}
{%- endmacro %}


{% macro delete_recomputed_days(column) -%}
    {%- if recomputes() -%}
        {%- set first = recompute_from(column) -%}
        delete from {{ this }}{% if first is not none %} where {{ column }} >= {{ first }}{% endif %}
    {%- endif -%}
{%- endmacro %}


{#- The stored rows a run keeps, as a condition on `this` (a run appends to them). -#}
{% macro before_recomputed(column) -%}
    {%- set first = recompute_from(column) -%}
    {{ 'true' if first is none else column ~ ' < ' ~ first }}
{%- endmacro %}


{#- For models kept by a day column (the generated kpi_activity__* models): `source_time`
    on or after the first recomputed day; true when the whole model is rebuilt. -#}
{% macro on_or_after_recomputed(source_time, column) -%}
    {%- set first = recompute_from(column) if recomputes() else none -%}
    {{ 'true' if first is none else source_time ~ ' >= ' ~ first }}
{%- endmacro %}


{#- `source_time`: the source column (timestamp or date) whose date is the mart's `column`;
    compared as it is, not cast to a date, so that Parquet sources skip the row groups of
    earlier days (a cast hides the column's statistics: 0.06 s against 20 s for sessions). -#}
{% macro where_recomputed(source_time, column) -%}
    {%- if recomputes() -%}
        {%- set first = recompute_from(column) -%}
        {%- if first is not none %}
    where {{ source_time }} >= {{ first }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
