-- A deal exists only for a lead that converted.
select
    deals.deal_id,
    leads.lead_id
from {{ source('crm', 'deals') }} as deals
inner join {{ source('crm', 'leads') }} as leads
    on deals.lead_id = leads.lead_id
where leads.converted_at is null
