{#-
    Time from `start` to `end` in hours or minutes, rounded half up to hundredths exactly:
    whole seconds are scaled to hundredths of the unit and rounded in integer arithmetic,
    so a duration of exactly 152.325 hours is 152.33 (seconds / 3600.0 in floating point
    would round some half-hundredths down). NULL when either end is NULL.
-#}
{% macro duration_between(start, end, unit) -%}
    {%- set seconds_per_unit = {'hours': 3600, 'minutes': 60}[unit] -%}
    floor(
        ({{ dbt.datediff(start, end, 'second') }} * 100 + {{ seconds_per_unit // 2 }})
        / {{ seconds_per_unit }}.0
    ) / 100
{%- endmacro %}
