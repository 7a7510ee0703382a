{#- One row per rep and fiscal quarter with a compensation plan for their role: base pay (a quarter of the annual
    base), commission and the accelerator. Which bookings a role is paid on is the sales_role_credits seed's to say
    (AEs and AMs the deals they owned when won, SDRs the won deals they sourced, managers their team's). Commission is the plan's rate on bookings up to
    quota x accelerator_threshold, and rate x accelerator_multiplier on bookings above it; without a quota
    (SDRs) the rate applies to all bookings. -#}
with

bookings as (
    select * from {{ ref('fct_bookings') }}
),

reps as (
    select * from {{ ref('dim_rep') }}
    where is_current
),

plans as (
    select * from {{ ref('stg_reference__compensation_plans') }}
),

quotas as (
    select * from {{ ref('stg_reference__quotas') }}
),

role_credits as (
    select * from {{ ref('sales_role_credits') }}
),

dates as (
    select distinct
        fiscal_quarter_label,
        fiscal_quarter_start_date,
        fiscal_quarter_end_date
    from {{ ref('dim_date') }}
    where fiscal_quarter_start_date <= {{ as_of_date() }}
),


rep_quarters as (
    -- every rep with a plan, for every quarter they held a quota or were credited with a booking
    select
        reps.rep_id,
        reps.sales_role,
        dates.fiscal_quarter_label as fiscal_period,
        dates.fiscal_quarter_start_date
    from reps
    cross join dates
    where reps.sales_role in (select plans.sales_role from plans)
),

credits as (
    -- each booking once per kind of credit (owner, sourced, team), joined to a rep by equalities rather than an OR,
    -- which made the join a nested loop
    select
        rep_id as credited_rep_id,
        fiscal_period,
        amount_reporting,
        'owner' as credit_kind
    from bookings
    union all
    select
        sourced_by_id as credited_rep_id,
        fiscal_period,
        amount_reporting,
        'sourced' as credit_kind
    from bookings
    where sourced_by_id is not null
    union all
    select
        team_id as credited_rep_id,
        fiscal_period,
        amount_reporting,
        'team' as credit_kind
    from bookings
    where team_id is not null
),

credited as (
    select
        rep_quarters.rep_id,
        rep_quarters.fiscal_period,
        sum(credits.amount_reporting) as bookings_amount
    from rep_quarters
    inner join credits
        on rep_quarters.rep_id = credits.credited_rep_id
            and rep_quarters.fiscal_period = credits.fiscal_period
    inner join role_credits
        on rep_quarters.sales_role = role_credits.sales_role
            and credits.credit_kind = role_credits.credit_kind
    group by rep_quarters.rep_id, rep_quarters.fiscal_period
),

plan_in_force as (
    select *
    from (
        select
            rep_quarters.rep_id,
            rep_quarters.fiscal_period,
            plans.plan_id,
            plans.base_salary_annual,
            plans.commission_rate,
            plans.accelerator_threshold,
            plans.accelerator_multiplier,
            row_number() over (
                partition by rep_quarters.rep_id, rep_quarters.fiscal_period
                order by plans.effective_from_date desc
            ) as plan_rank
        from rep_quarters
        inner join plans
            on rep_quarters.sales_role = plans.sales_role
                and rep_quarters.fiscal_quarter_start_date >= plans.effective_from_date
    ) as ranked
    where plan_rank = 1
),

quota_of_rep as (
    select
        owner_id,
        fiscal_period,
        sum(quota_amount) as quota_amount
    from quotas
    group by owner_id, fiscal_period
),

measured as (
    select
        rep_quarters.rep_id,
        rep_quarters.sales_role,
        rep_quarters.fiscal_period,
        plan_in_force.plan_id,
        plan_in_force.base_salary_annual / 4 as base_amount,
        plan_in_force.commission_rate,
        plan_in_force.accelerator_threshold,
        plan_in_force.accelerator_multiplier,
        quota_of_rep.quota_amount,
        coalesce(credited.bookings_amount, 0) as bookings_amount,
        case
            when quota_of_rep.quota_amount is null then null
            else quota_of_rep.quota_amount * plan_in_force.accelerator_threshold
        end as accelerator_from_amount
    from rep_quarters
    inner join plan_in_force
        on rep_quarters.rep_id = plan_in_force.rep_id and rep_quarters.fiscal_period = plan_in_force.fiscal_period
    left join credited
        on rep_quarters.rep_id = credited.rep_id and rep_quarters.fiscal_period = credited.fiscal_period
    left join quota_of_rep
        on rep_quarters.rep_id = quota_of_rep.owner_id and rep_quarters.fiscal_period = quota_of_rep.fiscal_period
    where quota_of_rep.quota_amount is not null or credited.bookings_amount is not null
),

paid as (
    select
        measured.*,
        case
            when accelerator_from_amount is null then bookings_amount
            when bookings_amount < accelerator_from_amount then bookings_amount
            else accelerator_from_amount
        end as bookings_at_base_rate,
        case
            when accelerator_from_amount is null or bookings_amount <= accelerator_from_amount then 0
            else bookings_amount - accelerator_from_amount
        end as bookings_above_threshold
    from measured
),

paid_in_cents as (
    select
        rep_id,
        sales_role,
        fiscal_period,
        plan_id,
        quota_amount,
        bookings_amount,
        cast(base_amount as decimal(18, 2)) as base_amount,
        cast(bookings_at_base_rate * commission_rate as decimal(18, 2)) as commission_amount,
        cast(bookings_above_threshold * commission_rate * accelerator_multiplier as decimal(18, 2))
            as accelerator_amount
    from paid
)

select
    {{ dbt.hash(dbt.concat(["rep_id", "'|'", "fiscal_period"])) }} as commission_id,
    rep_id,
    sales_role,
    fiscal_period,
    plan_id,
    '{{ var("reporting_currency") }}' as currency,
    cast(quota_amount as decimal(18, 2)) as quota_amount,
    cast(bookings_amount as decimal(18, 2)) as bookings_amount,
    cast({{ safe_ratio('bookings_amount', 'quota_amount') }} as double) as attainment,
    base_amount,
    commission_amount,
    accelerator_amount,
    -- the sum of the lines, each rounded to the cent, so that a pay statement adds up (rounding the exact sum
    -- puts the total a cent off its lines for 32 of 23,705 rep-quarters at bench)
    cast(base_amount + commission_amount + accelerator_amount as decimal(18, 2)) as total_pay_amount
from paid_in_cents
