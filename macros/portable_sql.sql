{#- The demo's SQL that differs between its engines (DuckDB, PostgreSQL, Spark), one
    macro per construct; dbt's cross-database macros (dbt.datediff, dbt.date_trunc...)
    cover the rest. -#}

{#- The text type of a cast (Spark's VARCHAR needs a length: its text type is STRING).
    The marts' contracts say the same in their YAML, where macros cannot be called. -#}
{% macro string_type() -%}
    {{ return(adapter.dispatch('string_type')()) }}
{%- endmacro %}

{% macro default__string_type() -%}
    {{ return('varchar') }}
{%- endmacro %}

{% macro spark__string_type() -%}
    {{ return('string') }}
{%- endmacro %}

{#- The whole numbers 0 to `last` as a query of one column, day_offset. -#}
{% macro day_offsets(last) -%}
    {{ return(adapter.dispatch('day_offsets')(last)) }}
{%- endmacro %}

{% macro default__day_offsets(last) -%}
    select day_offset from generate_series(0, {{ last }}) as day_series (day_offset)
{%- endmacro %}

{% macro spark__day_offsets(last) -%}
    select explode(sequence(0, {{ last }})) as day_offset
{%- endmacro %}

{#- The ISO 8601 year of a date (that of its ISO week). -#}
{% macro iso_year(day) -%}
    {{ return(adapter.dispatch('iso_year')(day)) }}
{%- endmacro %}

{% macro default__iso_year(day) -%}
    extract(isoyear from {{ day }})
{%- endmacro %}

{% macro spark__iso_year(day) -%}
    extract(yearofweek from {{ day }})
{%- endmacro %}

{#- The ISO day of the week of a date: Monday 1 .. Sunday 7. -#}
{% macro iso_day_of_week(day) -%}
    {{ return(adapter.dispatch('iso_day_of_week')(day)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(day) -%}
    extract(isodow from {{ day }})
{%- endmacro %}

{% macro spark__iso_day_of_week(day) -%}
    extract(dayofweek_iso from {{ day }})
{%- endmacro %}
