-- segment and region beside each trial: conversion KPIs slice by their base model's columns
select
    trials.trial_id,
    trials.account_id,
    trials.started_at,
    cast(trials.started_at as date) as started_on,
    trials.converted_at,
    accounts.segment,
    accounts.region
from {{ ref('stg_crm__trials') }} as trials
inner join {{ ref('stg_crm__accounts') }} as accounts on trials.account_id = accounts.account_id
