with

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

territories as (
    select * from {{ ref('stg_reference__territories') }}
)

select
    accounts.account_id,
    accounts.account_name,
    accounts.account_type,
    accounts.industry,
    accounts.employee_band,
    accounts.number_of_employees,
    accounts.billing_country_code,
    accounts.segment,
    accounts.region,
    accounts.territory_id,
    territories.territory_name,
    accounts.owner_id,
    accounts.currency,
    accounts.is_deleted,
    accounts.created_at
from accounts
left join territories on accounts.territory_id = territories.territory_id
