with

employee_surveys as (

    select
        employee_survey_id,
        employee_id,
        surveyed_on,
        satisfaction_score
    from {{ ref('stg_hr__employee_surveys') }}

),

employees as (

    select
        employee_id,
        department
    from {{ ref('stg_hr__employees') }}

),

surveys_joined as (

    select
        employee_surveys.employee_survey_id,
        employee_surveys.employee_id,
        employees.department,
        employee_surveys.surveyed_on,
        employee_surveys.satisfaction_score
    from employee_surveys
    left join employees
        on employee_surveys.employee_id = employees.employee_id

)

select
    cast(employee_survey_id as bigint) as employee_survey_id,
    cast(employee_id as bigint) as employee_id,
    cast(department as {{ string_type() }}) as department,
    cast(surveyed_on as date) as surveyed_on,
    cast(satisfaction_score as integer) as satisfaction_score
from surveys_joined
