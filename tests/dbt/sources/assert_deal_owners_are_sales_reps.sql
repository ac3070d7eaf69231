-- Deals are owned by employees of the sales department.
select
    deals.deal_id,
    employees.employee_id,
    employees.department
from {{ source('crm', 'deals') }} as deals
inner join {{ source('hr', 'employees') }} as employees
    on deals.sales_rep_id = employees.employee_id
where employees.department <> 'sales'
