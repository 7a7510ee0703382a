"""Stand-ins for dbt's cross-database macros, for SQLFluff's jinja templater only (sqlfluff-templater-dbt has no
release for the pinned SQLFluff and needs a live warehouse to compile this project). Each renders the DuckDB SQL the
real macro renders, so the linter sees the shape of the compiled query."""


def concat(fields):
    return "concat(" + ", ".join(fields) + ")"


def hash(field):  # noqa: A001 - the name dbt gives it
    return f"md5(cast({field} as varchar))"


def type_string():
    return "varchar"


def type_timestamp():
    return "timestamp"


def type_numeric():
    return "numeric(28, 6)"


def type_float():
    return "float"


def dateadd(datepart, interval, from_date_or_timestamp):
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def date_spine(datepart, start_date, end_date):
    return f"select unnest(generate_series({start_date}, {end_date}, interval 1 {datepart})) as date_{datepart}"
