"""scikit-learn models: point-in-time features, win probability, revenue forecasts, backtests. No Dagster imports."""
