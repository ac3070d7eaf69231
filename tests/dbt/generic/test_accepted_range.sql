{#-
    Fails for rows whose column lies outside [min_value, max_value]
    (bounds optional; `inclusive: false` makes them strict). NULLs pass.
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- set outside = [] -%}
{%- if min_value is not none -%}
    {%- do outside.append(column_name ~ (' < ' if inclusive else ' <= ') ~ min_value) -%}
{%- endif -%}
{%- if max_value is not none -%}
    {%- do outside.append(column_name ~ (' > ' if inclusive else ' >= ') ~ max_value) -%}
{%- endif %}

select {{ column_name }} as failing_value
from {{ model }}
where
    {{ column_name }} is not null
    and ({{ outside | join(' or ') if outside else '1 = 0' }})

{% endtest %}
