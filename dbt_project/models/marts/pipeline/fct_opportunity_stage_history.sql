with

visits as (
    select * from {{ ref('int_opportunity_stage_visits') }}
)

select
    {{ dbt.hash(dbt.concat(["opportunity_id", "'|'", "cast(visit_number as " ~ dbt.type_string() ~ ")"])) }}
        as stage_visit_id,
    opportunity_id,
    cast(visit_number as integer) as visit_number,
    stage_name,
    stage_order,
    entered_at,
    exited_at,
    -- an open visit counts its days up to the end of the as-of date
    cast({{ days_between('entered_at', 'coalesce(exited_at, ' ~ as_of_end_at() ~ ')') }} as decimal(10, 2))
        as days_in_stage,
    exited_at is null as is_current,
    is_closed,
    is_won,
    -- a move back to an earlier open stage (a deal reopened from a closed stage counts too)
    coalesce(not is_closed and stage_order < previous_stage_order, false) as is_regression
from visits
