with

source as (

    select
        employee_id,
        department,
        job_title,
        hired_on,
        left_on
    from {{ source('hr', 'employees') }}

),

renamed as (

    select
        cast(employee_id as bigint) as employee_id,
        lower(trim(cast(department as {{ string_type() }}))) as department,
        trim(cast(job_title as {{ string_type() }})) as job_title,
        cast(hired_on as date) as hired_on,
        cast(left_on as date) as left_on
    from source

)

select
    employee_id,
    department,
    job_title,
    hired_on,
    left_on
from renamed
