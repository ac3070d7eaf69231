-- Tickets are handled by employees of the customer_service department.
select
    tickets.ticket_id,
    employees.employee_id,
    employees.department
from {{ source('crm', 'tickets') }} as tickets
inner join {{ source('hr', 'employees') }} as employees
    on tickets.agent_id = employees.employee_id
where employees.department <> 'customer_service'
