-- Employees answer pulse surveys only while employed.
select
    employee_surveys.employee_survey_id,
    employee_surveys.surveyed_on,
    employees.hired_on,
    employees.left_on
from {{ source('hr', 'employee_surveys') }} as employee_surveys
inner join {{ source('hr', 'employees') }} as employees
    on employee_surveys.employee_id = employees.employee_id
where
    employee_surveys.surveyed_on < employees.hired_on
    or employee_surveys.surveyed_on > employees.left_on
