with

source as (
    {{ latest_version(source('raw', 'opportunity_history'), '"Id"', '"SystemModstamp"') }}
),

renamed as (
    select
        -- ids
        "Id" as opportunity_history_id,
        "OpportunityId" as opportunity_id,
        "CreatedById" as created_by_id,

        -- strings
        "StageName" as stage_name,
        -- OpportunityHistory carries the API names of the forecast categories; Opportunity the labels
        case "ForecastCategory"
            when 'BestCase' then 'Best Case'
            when 'Forecast' then 'Commit'
            when 'MostLikely' then 'Most Likely'
            else "ForecastCategory"
        end as forecast_category,

        -- numerics
        "Amount" as amount,
        "Probability" as probability,

        -- booleans
        "IsDeleted" as is_deleted,

        -- dates and timestamps
        "CloseDate" as close_date,
        "CreatedDate" as changed_at

    from source
    where "CreatedDate" < {{ as_of_end_at() }}
)

select * from renamed
