"""The warehouse: its names (`names`), the statements the tool runs on it (`sql`), and
reading the published KPI marts (`query`, for `kpi query`)."""

from pipeline.warehouse.query import kpi_rows

__all__ = ["kpi_rows"]
