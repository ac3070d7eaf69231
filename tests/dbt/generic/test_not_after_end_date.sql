{#-
    Fails for dates or timestamps after the end of the data's history
    (var('end_date'), the last day included). Catches future-dated rows.
-#}
{% test not_after_end_date(model, column_name) %}

select
    {{ column_name }} as failing_value
from {{ model }}
where cast({{ column_name }} as date) > cast('{{ var("end_date") }}' as date)

{% endtest %}
