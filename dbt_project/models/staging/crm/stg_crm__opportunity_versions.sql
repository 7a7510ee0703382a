{{ config(materialized='view') }}

{#- One row per exported version of an opportunity, with the fields that place a deal on every day of its life
    (owner, account, currency, creation, deletion) and the version's lineage: the incremental pipeline summary reads
    it to tell a deal moved, re-dated or deleted (every day of its life changes) from a deal that only moved on
    (the days since). -#}
with

source as (
    {{ exported_as_of(source('raw', 'opportunity')) }}
),

renamed as (
    select
        -- ids
        "Id" as opportunity_id,
        "OwnerId" as owner_id,
        "AccountId" as account_id,

        -- strings
        "CurrencyIsoCode" as currency,

        -- booleans
        "IsDeleted" as is_deleted,

        -- timestamps
        "CreatedDate" as created_at,
        "SystemModstamp" as modified_at,

        -- lineage
        _export_date,
        _loaded_at,
        _load_id,
        _record_number

    from source
)

select * from renamed
