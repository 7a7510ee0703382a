"""Operations: keeping the Dagster instance able to run (runs whose process died)."""
