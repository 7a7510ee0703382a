{#- The one statement of which deals count as open pipeline, read by fct_opportunity, fct_pipeline_daily and
    mart_pipeline_summary: an amount above zero, a close date and a forecast category other than Omitted (a rep's
    way of saying the deal will not close). `is_closed`, when given, leaves closed deals out; a model whose rows
    are open deal-days already passes none. Never null: a deal with a part missing does not count. -#}
{% macro is_pipeline_eligible(amount, close_date, forecast_category, is_closed=none) -%}
    coalesce(
        {% if is_closed is not none %}not {{ is_closed }} and {% endif %}{{ amount }} > 0
        and {{ close_date }} is not null
        and {{ forecast_category }} <> 'Omitted',
        false
    )
{%- endmacro %}

{#- The opportunities whose states and days what changed since `build` (an incremental model's previous build,
    macros/incremental.sql) can change: a new version of the deal or of a change in its history, deletions
    included; every deal when the stage definitions changed; and the deals that stand or stood in a stage no
    definition names, whose closed and won flags any deal in the stage can move (int_opportunity_stages_resolved). -#}
{% macro changed_opportunities(build) -%}
    {%- set since = previous_build_started_at(build) -%}
    select opportunity_id from {{ ref('stg_crm__opportunities') }}
    where _merged_at > {{ since }}
    union
    select opportunity_id from {{ ref('stg_crm__opportunity_history') }}
    where _merged_at > {{ since }}
    union
    select opportunity_id from {{ ref('stg_crm__opportunities') }}
    where exists (
        select 1 from {{ ref('stg_crm__opportunity_stages') }} as stages
        where stages._loaded_at > {{ since }} or stages.modified_at >= {{ previous_as_of_end_at(build) }}
    )
    union
    select opportunity_id from {{ ref('stg_crm__opportunity_history') }}
    where stage_name in ({{ undefined_stages() }})
    union
    select opportunity_id from {{ ref('stg_crm__opportunities') }}
    where stage_name in ({{ undefined_stages() }})
{%- endmacro %}

{#- The opportunities an incremental build of a per-deal model recomputes: the changed ones and, `with_states`,
    those whose states int_opportunity_states_versioned rewrote since (whichever build wrote them). -#}
{% macro opportunities_to_recompute(build, with_states=false) -%}
    select opportunity_id from ({{ changed_opportunities(build) }}) as changed_deals
    {%- if with_states %}
    union
    select opportunity_id from {{ ref('int_opportunity_states_versioned') }}
    where _merged_at > {{ previous_build_started_at(build) }}
    {%- endif %}
{%- endmacro %}

{#- The pre-hook of the per-deal incremental models: the deals about to be recomputed are deleted first, so that a
    deleted deal's rows go. -#}
{% macro delete_changed_opportunities(with_states=false) -%}
    {%- set build = incremental_build() -%}
    {%- if build.mode == 'incremental' -%}
        delete from {{ this }}
        where opportunity_id in ({{ opportunities_to_recompute(build, with_states) }})
    {%- endif -%}
{%- endmacro %}

{#- The stage names opportunities or their history use that no definition names. -#}
{% macro undefined_stages() -%}
    select undefined.stage_name from {{ ref('int_opportunity_stages_resolved') }} as undefined
    where not undefined.is_defined
{%- endmacro %}

{#- The rates to the reporting currency that changed since `build`: per currency, the first day whose rate
    changed (a rate holds until the next one, so every day from there may convert differently). -#}
{% macro changed_fx_rates(build) -%}
    select
        from_currency as currency,
        min(rate_date) as first_day
    from {{ ref('stg_reference__fx_rates') }}
    where
        to_currency = '{{ var("reporting_currency") }}'
        and (_loaded_at > {{ previous_build_started_at(build) }} or _export_date > {{ previous_as_of_date(build) }})
    group by from_currency
{%- endmacro %}

{#- The pre-hook of fct_pipeline_daily: the days an incremental build writes are deleted first (all of them, the
    days after the previous as-of date included: a build whose record was lost is written again, not twice). -#}
{% macro delete_pipeline_days_to_recompute() -%}
    {%- set build = incremental_build() -%}
    {%- if build.mode == 'incremental' -%}
        delete from {{ this }} as deal_days
        where
            deal_days.pipeline_date > {{ previous_as_of_date(build) }}
            or deal_days.opportunity_id in ({{ changed_opportunities(build) }})
            or deal_days.pipeline_date >= (
                select changed_rates.first_day from ({{ changed_fx_rates(build) }}) as changed_rates
                where changed_rates.currency = deal_days.currency
            )
    {%- endif -%}
{%- endmacro %}

{#- The opportunities a change since `build` moved, re-dated, converted, deleted or brought in: a version new since
    that build (loaded after it started, dated or made visible after its as-of date) whose owner, account, currency,
    creation or deletion differs from the version before it, or that has none before it. Every day of such a deal's
    life can change; a deal that only moved on (a new stage, amount or close date) changes from that change on. -#}
{% macro moved_opportunities(build) -%}
    {%- set since = previous_build_started_at(build) -%}
    select distinct opportunity_id
    from (
        select
            versions.*,
            lag(owner_id) over (deal_versions) as previous_owner_id,
            lag(account_id) over (deal_versions) as previous_account_id,
            lag(currency) over (deal_versions) as previous_currency,
            lag(created_at) over (deal_versions) as previous_created_at,
            lag(is_deleted) over (deal_versions) as previous_is_deleted,
            row_number() over (deal_versions) as version_number
        from {{ ref('stg_crm__opportunity_versions') }} as versions
        where
            opportunity_id in (
                select opportunities.opportunity_id from {{ ref('stg_crm__opportunities') }} as opportunities
                where opportunities._merged_at > {{ since }}
            )
        window deal_versions as (partition by opportunity_id order by modified_at, _load_id, _record_number)
    ) as sequenced
    where
        (
            _loaded_at > {{ since }}
            or _export_date > {{ previous_as_of_date(build) }}
            or modified_at >= {{ previous_as_of_end_at(build) }}
        )
        and (
            version_number = 1
            or owner_id is distinct from previous_owner_id
            or account_id is distinct from previous_account_id
            or currency is distinct from previous_currency
            or created_at is distinct from previous_created_at
            or is_deleted is distinct from previous_is_deleted
        )
{%- endmacro %}

{#-
  What mart_pipeline_summary recomputes after what changed since `build`. A summary day holds every deal's state
  that day, so a change recomputes every day from the first one it reaches, for every team, or for the teams it can
  move rows between:

  - every team, from: the day after the previous as-of date; the day of a changed history row; the day a changed
    closed deal closed (its amount and team at the close count in that quarter); the first day of a changed rate,
    and of a deal that closed with a later close date; the first day of the calendar when the stage definitions
    changed, and the first day of the deals in a stage no definition names when one of them changed;
  - the teams a deal counted for, before or after, from the first day of its life: a deal moved to another owner,
    re-dated, converted to another currency, deleted, or new (`moved_opportunities`), since its team on every day is
    its owner's then;
  - the teams of a user with a new version, from the day before it (their deals' team from then on), or from the
    first day of their deals that began before the user existed (those take the user's current team);
  - the team of a changed team quota, from the first day of its quarter.
-#}
{% macro pipeline_summary_changes(build) -%}
    {%- set since = previous_build_started_at(build) -%}
    with

    stamped_deals as (
        select opportunity_id from {{ ref('stg_crm__opportunities') }}
        where _merged_at > {{ since }}
        union
        select opportunity_id from {{ ref('stg_crm__opportunity_history') }}
        where _merged_at > {{ since }}
    ),

    moved_deals as (
        {{ moved_opportunities(build) }}
    ),

    versions as (
        select * from {{ ref('stg_crm__opportunity_versions') }}
        where opportunity_id in (select moved_deals.opportunity_id from moved_deals)
    ),

    -- users with a version new since the previous build, and the first change
    changed_users as (
        select
            user_id,
            min(modified_at) as changed_at,
            min(created_at) as created_at
        from {{ ref('stg_crm__users') }}
        where
            _merged_at > {{ since }}
            and (
                _loaded_at > {{ since }}
                or _export_date > {{ previous_as_of_date(build) }}
                or modified_at >= {{ previous_as_of_end_at(build) }}
            )
        group by user_id
    ),

    changed_team_quotas as (
        select
            owner_id as team_id,
            period_start_date
        from {{ ref('stg_reference__quotas') }}
        where
            quota_type = 'team'
            and (_loaded_at > {{ since }} or _export_date > {{ previous_as_of_date(build) }})
    ),

    undefined_stage_deals as (
        select opportunity_id from {{ ref('stg_crm__opportunity_history') }}
        where stage_name in ({{ undefined_stages() }})
        union
        select opportunity_id from {{ ref('stg_crm__opportunities') }}
        where stage_name in ({{ undefined_stages() }})
    ),

    every_team_from as (
        select cast({{ dbt.dateadd('day', 1, previous_as_of_date(build)) }} as date) as first_day
        union all
        select cast(changed_at as date) as first_day from {{ ref('stg_crm__opportunity_history') }}
        where _merged_at > {{ since }}
        union all
        select cast(valid_from_at as date) as first_day from {{ ref('int_opportunity_states_versioned') }}
        where
            is_closed
            and valid_to_at is null
            and opportunity_id in (select stamped_deals.opportunity_id from stamped_deals)
        union all
        select changed_rates.first_day from ({{ changed_fx_rates(build) }}) as changed_rates
        union all
        select greatest(cast(states.valid_from_at as date), closing_quarter.fiscal_quarter_start_date) as first_day
        from {{ ref('int_opportunity_states_versioned') }} as states
        inner join {{ ref('dim_date') }} as closing_quarter on states.close_date = closing_quarter.date_day
        where
            states.is_closed
            and states.close_date >= (
                select min(changed_rates.first_day) from ({{ changed_fx_rates(build) }}) as changed_rates
            )
        union all
        select cast('{{ var("calendar_start_date") }}' as date) as first_day
        from {{ ref('stg_crm__opportunity_stages') }}
        where _loaded_at > {{ since }} or modified_at >= {{ previous_as_of_end_at(build) }}
        union all
        select cast(states.valid_from_at as date) as first_day
        from {{ ref('int_opportunity_states_versioned') }} as states
        where
            states.opportunity_id in (select undefined_stage_deals.opportunity_id from undefined_stage_deals)
            and exists (
                select 1 from stamped_deals
                where stamped_deals.opportunity_id in (
                    select undefined_stage_deals.opportunity_id from undefined_stage_deals
                )
            )
    ),

    some_teams_from as (
        select cast(created_at as date) as first_day from versions
        union all
        select cast(changed_at as date) as first_day from {{ ref('stg_crm__opportunity_history') }}
        where opportunity_id in (select moved_deals.opportunity_id from moved_deals)
        union all
        select cast({{ dbt.dateadd('day', -1, 'changed_at') }} as date) as first_day from changed_users
        union all
        select cast(opportunities.created_at as date) as first_day
        from {{ ref('stg_crm__opportunities') }} as opportunities
        inner join changed_users on opportunities.owner_id = changed_users.user_id
        where opportunities.created_at < changed_users.created_at
        union all
        select period_start_date as first_day from changed_team_quotas
    ),

    -- the teams those changes can move rows between ('' for the rows without a team)
    changed_teams as (
        select coalesce(reps.team_id, '') as team_key from {{ ref('dim_rep') }} as reps
        where
            reps.rep_id in (select versions.owner_id from versions)
            or reps.rep_id in (select changed_users.user_id from changed_users)
        union
        select coalesce(team_id, '') as team_key from {{ ref('fct_opportunity') }}
        where
            opportunity_id in (select moved_deals.opportunity_id from moved_deals)
            or owner_id in (select changed_users.user_id from changed_users)
        union
        select team_id as team_key from changed_team_quotas
        union
        select '' as team_key
    )

    select
        'every_team' as scope,
        cast(min(first_day) as {{ dbt.type_string() }}) as value
    from every_team_from
    union all
    select
        'some_teams' as scope,
        cast(min(first_day) as {{ dbt.type_string() }}) as value
    from some_teams_from
    union all
    select
        'team' as scope,
        team_key as value
    from changed_teams
{%- endmacro %}

{#- What an incremental build of mart_pipeline_summary recomputes (`pipeline_summary_changes`), as SQL literals:
    {'every_team_from': a date, 'some_teams_from': a date, 'teams': a list of team keys}, with no day before the
    calendar's first and 'some_teams_from' never after 'every_team_from'. -#}
{% macro pipeline_summary_scope(build) -%}
    {%- set calendar_start = var('calendar_start_date') | string -%}
    {%- set found = {'every_team': none, 'some_teams': none} -%}
    {%- set teams = [] -%}
    {%- for row in run_query(pipeline_summary_changes(build)).rows -%}
        {%- if row[0] == 'team' -%}
            {%- do teams.append(row[1]) -%}
        {%- elif row[1] is not none -%}
            {%- do found.update({row[0]: [row[1], calendar_start] | max}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set every_team_from = found['every_team'] -%}
    {%- set some_teams_from = [found['some_teams'] or every_team_from, every_team_from] | min -%}
    {{ return({
        'every_team_from': "cast('" ~ every_team_from ~ "' as date)",
        'some_teams_from': "cast('" ~ some_teams_from ~ "' as date)",
        'teams': "('" ~ (teams | join("', '")) ~ "')",
    }) }}
{%- endmacro %}

{#- The pre-hook of mart_pipeline_summary: the rows an incremental build recomputes are deleted first. -#}
{% macro delete_pipeline_summary_rows_to_recompute() -%}
    {%- set build = incremental_build() -%}
    {%- if build.mode == 'incremental' -%}
        {%- set scope = pipeline_summary_scope(build) -%}
        delete from {{ this }}
        where
            as_of_date >= {{ scope.every_team_from }}
            or (as_of_date >= {{ scope.some_teams_from }} and coalesce(team_id, '') in {{ scope.teams }})
    {%- endif -%}
{%- endmacro %}
