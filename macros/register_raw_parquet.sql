{#- On Spark with KPI_RAW_PARQUET=<dir> (run at the start of every dbt run): each declared
    source table becomes an external table of its schema over its Parquet file,
    <dir>/<source>/<table>.parquet (KPI_RAW_PARQUET_LAYOUT, without globs), replacing the
    table of the last run; the files are never touched. On DuckDB the sources read the files
    themselves (their external_location); elsewhere, or unset, nothing is done. -#}
{% macro register_raw_parquet() -%}
    {%- set folder = env_var('KPI_RAW_PARQUET', '') -%}
    {%- if execute and target.type == 'spark' and folder -%}
        {%- set layout = env_var('KPI_RAW_PARQUET_LAYOUT', '') or '{source}/{table}.parquet' -%}
        {%- for source in graph.sources.values() | sort(attribute='unique_id') -%}
            {%- set path = folder ~ '/' ~ layout.replace('{source}', source.source_name)
                .replace('{table}', source.name).replace('{identifier}', source.identifier) -%}
            {%- if "'" in path or '\\' in path -%}
                {{ exceptions.raise_compiler_error("KPI_RAW_PARQUET: a path with a quote or a backslash cannot be registered: " ~ path) }}
            {%- endif -%}
            {%- do run_query('create schema if not exists ' ~ source.schema) -%}
            {%- do run_query('drop table if exists ' ~ source.schema ~ '.' ~ source.identifier) -%}
            {%- do run_query('create table ' ~ source.schema ~ '.' ~ source.identifier
                ~ " using parquet location '" ~ path ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
