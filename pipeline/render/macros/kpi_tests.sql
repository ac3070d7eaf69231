{#- The dbt tests of the generated models' properties (models/kpi/_kpi__models.yml). -#}

{#- Fails for every combination of the given columns that occurs more than once. -#}
{% test kpi_unique_rows(model, columns) %}

select
    {{ columns | join(',\n    ') }},
    count(*) as n_records
from {{ model }}
group by
    {{ columns | join(',\n    ') }}
having count(*) > 1

{% endtest %}
