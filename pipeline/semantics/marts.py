"""The columns of the KPI marts' rows (the output contract), and the names no KPI may take."""

from __future__ import annotations

SLICE_KEYS = ("dimension", "dimension_value")
# the columns of every values model's rows, and the wide tables' beside one per KPI
VALUE_COLUMNS = ("kpi", "grain", "period_start", "period_end", *SLICE_KEYS, "value", "numerator", "denominator")
WIDE_KEYS = ("period_start", "period_end")
# Names no KPI may take: KPIs are columns beside these in the wide tables and in the
# models building the long one.
RESERVED_KPI_NAMES = frozenset((*WIDE_KEYS, *VALUE_COLUMNS))
