{#-
    Seeds on PostgreSQL: dbt's default loader calls the `get_binding_char()` macro once per
    cell, which makes `dbt seed --target postgres` take minutes for the demo's 180k rows.
    Same statements (batched multi-row INSERTs with bound parameters), placeholders built
    once per batch. Used by dbt-postgres only; DuckDB loads seeds its own way.
-#}
{% macro postgres__load_csv_rows(model, agate_table) %}
    {%- set batch_size = get_batch_size() -%}
    {%- set cols_sql = get_seed_column_quoted_csv(model, agate_table.column_names) -%}
    {%- set row_sql = '(' ~ ((['%s'] * (agate_table.column_names | length)) | join(',')) ~ ')' -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(batch_size) -%}
        {%- set bindings = [] -%}
        {%- for row in chunk -%}
            {%- do bindings.extend(row) -%}
        {%- endfor -%}
        {%- set sql -%}
            insert into {{ this.render() }} ({{ cols_sql }}) values
            {{ ([row_sql] * (chunk | length)) | join(',\n') }}
        {%- endset -%}
        {%- do adapter.add_query(sql, bindings=bindings, abridge_sql_log=True) -%}
        {%- if loop.index0 == 0 -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}
