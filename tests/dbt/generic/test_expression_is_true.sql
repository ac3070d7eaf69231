{#-
    Fails for rows where a boolean SQL expression is false. Rows where it is
    NULL pass, so an expression over NULLable columns only checks filled rows
    (use the `where` config to narrow further).
-#}
{% test expression_is_true(model, expression, column_name=none) %}

select
    *
from {{ model }}
where not ({{ expression }})

{% endtest %}
