{#- Fails when the model is empty (an empty raw table is a broken load). -#}
{% test at_least_one_row(model) %}

select
    count(*) as n_records
from {{ model }}
having count(*) = 0

{% endtest %}
