with

employees as (

    select
        employee_id,
        department,
        job_title,
        hired_on,
        left_on
    from {{ ref('stg_hr__employees') }}

)

select
    cast(employee_id as bigint) as employee_id,
    cast(department as {{ string_type() }}) as department,
    cast(job_title as {{ string_type() }}) as job_title,
    cast(hired_on as date) as hired_on,
    cast(left_on as date) as left_on,
    left_on is null as is_active
from employees
