{#- One row per version of a user: role, team, pod, territory and manager from the time it was exported until the
    next version. The first version holds from the user's creation. A rep's team is their manager's team; a
    manager (and anyone above) leads their own. -#}
with

users as (
    select * from {{ ref('stg_crm__users') }}
),

sequenced as (
    select
        users.*,
        row_number() over (partition by user_id order by modified_at) as version_number,
        lead(modified_at) over (partition by user_id order by modified_at) as next_modified_at
    from users
)

select
    {{ dbt.hash(dbt.concat(["user_id", "'|'", "cast(version_number as " ~ dbt.type_string() ~ ")"])) }} as rep_key,
    user_id as rep_id,
    version_number,
    user_name as rep_name,
    email,
    title,
    sales_role,
    case when sales_role in ('SDR', 'AE', 'AM') then manager_id else user_id end as team_id,
    manager_id,
    user_role_id,
    pod,
    territory_id,
    region,
    segment,
    hire_date,
    termination_date,
    is_active,
    case when version_number = 1 then created_at else modified_at end as valid_from_at,
    next_modified_at as valid_to_at
from sequenced
