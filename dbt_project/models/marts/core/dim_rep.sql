with

versions as (
    select * from {{ ref('int_reps_versioned') }}
),

current_versions as (
    select * from versions
    where valid_to_at is null
),

territories as (
    select * from {{ ref('stg_reference__territories') }}
)

select
    versions.rep_key,
    versions.rep_id,
    versions.version_number,
    versions.rep_name,
    versions.email,
    versions.title,
    versions.sales_role,
    versions.team_id,
    team_lead.rep_name as team_name,
    versions.pod,
    versions.territory_id,
    territories.territory_name,
    coalesce(territories.region, versions.region) as region,
    coalesce(territories.segment, versions.segment) as segment,
    versions.manager_id,
    manager.rep_name as manager_name,
    -- the chain of command above the rep, nearest first, by each manager's current record
    {{ dbt.concat([
        "coalesce(manager.rep_name, '')",
        "case when second_manager.rep_name is not null then ' > ' || second_manager.rep_name else '' end",
        "case when third_manager.rep_name is not null then ' > ' || third_manager.rep_name else '' end",
    ]) }} as manager_chain,
    versions.hire_date,
    versions.termination_date,
    versions.is_active,
    versions.valid_from_at,
    versions.valid_to_at,
    versions.valid_to_at is null as is_current
from versions
left join current_versions as team_lead on versions.team_id = team_lead.rep_id
left join current_versions as manager on versions.manager_id = manager.rep_id
left join current_versions as second_manager on manager.manager_id = second_manager.rep_id
left join current_versions as third_manager on second_manager.manager_id = third_manager.rep_id
left join territories on versions.territory_id = territories.territory_id
