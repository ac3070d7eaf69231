"""Stand-ins for dbt's cross-database macros (`{{ dbt.datediff(...) }}` …) used only when
sqlfluff renders the models with its plain jinja templater (see `.sqlfluff`). They return
DuckDB SQL of the same shape as dbt-duckdb's macros; dbt itself never imports this file.
"""


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def dateadd(datepart: str, interval: str, from_date_or_timestamp: str) -> str:
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"


def type_numeric() -> str:
    return "numeric(28, 6)"
