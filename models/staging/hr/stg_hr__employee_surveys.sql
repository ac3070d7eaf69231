with

source as (

    select
        employee_survey_id,
        employee_id,
        surveyed_on,
        satisfaction_score
    from {{ source('hr', 'employee_surveys') }}

),

renamed as (

    select
        cast(employee_survey_id as bigint) as employee_survey_id,
        cast(employee_id as bigint) as employee_id,
        cast(surveyed_on as date) as surveyed_on,
        cast(satisfaction_score as integer) as satisfaction_score
    from source

)

select
    employee_survey_id,
    employee_id,
    surveyed_on,
    satisfaction_score
from renamed
