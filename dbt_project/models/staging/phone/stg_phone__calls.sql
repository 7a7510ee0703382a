{{ config(unique_key='call_id') }}

with

source as (
    -- a re-sent file corrects the calls it holds: the version loaded last wins; a call started after the as-of
    -- date's end is unknown as of the date
    {{ latest_exported_version(source('raw', 'phone_calls'), 'call_id', '_loaded_at', known_at='started_at') }}
),

renamed as (
    select
        -- ids
        call_id,

        -- strings
        direction,
        lower(user_email) as user_email,
        from_number_e164,
        to_number_e164,
        -- the customer's side of the call: who was called, or who called
        case when direction = 'outbound' then to_number_e164 else from_number_e164 end as customer_number_e164,
        disposition,

        -- numerics
        duration_seconds,
        talk_seconds,

        -- booleans
        -- between two extensions of the company's phone system; rows loaded before the flag existed are not
        coalesce(is_internal, false) as is_internal,

        -- timestamps
        started_at,
        answered_at,
        ended_at,

        -- lineage
        {{ build_started_at() }} as _merged_at

    from source
),

dispositions as (
    select * from {{ ref('call_dispositions') }}
)

select
    renamed.*,
    -- what counts as a connect is the call_dispositions seed's to say; an outcome it does not list is not one
    case when renamed.disposition is not null then coalesce(dispositions.is_connected, false) end as is_connected
from renamed
left join dispositions on renamed.disposition = dispositions.outcome
