select
    contact_id,
    account_id,
    owner_id,
    first_name,
    last_name,
    email,
    phone_e164,
    mobile_phone_e164,
    title,
    mailing_country,
    lead_source,
    is_deleted,
    created_at
from {{ ref('stg_crm__contacts') }}
