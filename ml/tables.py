"""The `ml` schema's tables: their DDL in one dict, and helpers to create them and append rows.

Rows are appended, never updated: a scoring day's probabilities stay as they were served. JSON lists are stored
as VARCHAR so the tables copy unchanged to Parquet and PostgreSQL.
"""

from __future__ import annotations

import duckdb
import pandas as pd

SCHEMA = "ml"

TABLES: dict[str, str] = {
    # one row per open deal per scoring day
    "ml.win_probability": """
        create table if not exists ml.win_probability (
            opportunity_id varchar not null,
            as_of_date date not null,
            p_win double not null,
            model_version varchar not null,
            model_kind varchar not null,
            training_cutoff date not null,
            top_factors_up varchar not null,
            top_factors_down varchar not null,
            primary key (opportunity_id, as_of_date)
        )""",
    # one row per trained model (served or refused)
    "ml.win_models": """
        create table if not exists ml.win_models (
            model_version varchar not null primary key,
            model_kind varchar not null,
            kind_reason varchar,
            training_cutoff date not null,
            trained_at timestamp with time zone not null,
            n_train_rows integer not null,
            n_won integer not null,
            n_lost integer not null,
            calibration varchar,
            calibration_rows integer,
            gate_passed boolean,  -- null for a stage-rate fallback, which is not gated
            gate_reason varchar not null,
            is_served boolean not null,
            card_path varchar not null
        )""",
    # one row per scored deal per scoring day: the baselines' forecasts beside the model's, for the backtest
    "ml.win_backtest_scores": """
        create table if not exists ml.win_backtest_scores (
            opportunity_id varchar not null,
            as_of_date date not null,
            amount_reporting double,
            crm_stage_probability double,
            empirical_stage_rate double,
            logistic_regression double,
            baseline_model_version varchar not null,
            primary key (opportunity_id, as_of_date)
        )""",
    # one row per method per evaluation date: scores over every scored (deal, day) whose outcome was known then
    "ml.win_backtest": """
        create table if not exists ml.win_backtest (
            evaluated_as_of date not null,
            method varchar not null,
            n integer not null,
            base_rate double,
            auc double,
            brier double,
            brier_skill double,
            log_loss double,
            ece double,
            expected_won_amount double,
            actual_won_amount double,
            primary key (evaluated_as_of, method)
        )""",
    # the reliability curve behind each row of ml.win_backtest: one row per equal-count bin
    "ml.win_reliability": """
        create table if not exists ml.win_reliability (
            evaluated_as_of date not null,
            method varchar not null,
            bin integer not null,
            mean_forecast double not null,
            observed_rate double not null,
            n integer not null,
            primary key (evaluated_as_of, method, bin)
        )""",
    # one row per forecast day, period, level and group; appended, never updated (ml/forecast.py)
    "ml.revenue_forecast": """
        create table if not exists ml.revenue_forecast (
            forecast_date date not null,
            period_grain varchar not null,
            period_start date not null,
            period_end date not null,
            level varchar not null,
            group_id varchar not null,
            currency varchar not null,
            booked_to_date decimal(18, 2) not null,
            open_pipeline_expected decimal(18, 2) not null,
            new_pipeline_expected decimal(18, 2) not null,
            p10 decimal(18, 2) not null,
            p50 decimal(18, 2) not null,
            p90 decimal(18, 2) not null,
            model_version varchar not null,
            primary key (forecast_date, model_version, period_grain, period_start, level, group_id)
        )""",
    # one row per origin, period, level and method; rebuilt on each run (ml/backtest.py)
    "ml.forecast_backtest": """
        create table if not exists ml.forecast_backtest (
            evaluated_as_of date not null,
            origin_date date not null,
            period_grain varchar not null,
            period_start date not null,
            period_end date not null,
            horizon integer not null,
            level varchar not null,
            method varchar not null,
            model_version varchar not null,
            n integer not null,
            actual_total decimal(18, 2) not null,
            forecast_total decimal(18, 2) not null,
            absolute_error decimal(18, 2) not null,
            wape double,
            bias double,
            coverage_80 double,
            primary key (origin_date, period_grain, horizon, level, method)
        )""",
}


def ensure_tables(con: duckdb.DuckDBPyConnection, tables: list[str] | None = None) -> None:
    """Create the `ml` schema and the named tables (all by default) when missing."""
    con.execute(f"create schema if not exists {SCHEMA}")
    for name in tables or TABLES:
        con.execute(TABLES[name])


def append(con: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame) -> int:
    """Insert `rows` into `table` by column name; returns the number inserted."""
    if rows.empty:
        return 0
    view = f"_append_{table.replace('.', '_')}"
    con.register(view, rows)
    try:
        con.execute(f"insert into {table} by name select * from {view}")
    finally:
        con.unregister(view)
    return len(rows)
