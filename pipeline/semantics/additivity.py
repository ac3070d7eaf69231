"""How KPI values combine over periods and slices: the one place deciding additivity.

Sums and counts add up over days; min and max re-aggregate; averages and ratios are
Σ numerator / Σ denominator; a median is recomputed from rows.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.spec.model import Kpi, Offset

ADDITIVE = ("sum", "count")
HOLISTIC = ("median",)
ZERO_WHEN_EMPTY = ("sum", "count", "count_distinct")  # other aggregations are NULL over no rows


def base_of(kpi: Kpi, kpis: Mapping[str, Kpi]) -> Kpi:
    """The KPI an offset KPI shifts (through offsets of offsets); any other KPI itself.
    An offset KPI's rows are its base's rows of other periods: its slices combine the same way."""
    seen = {kpi.name}
    while isinstance(kpi.params, Offset):
        base = kpis.get(kpi.params.of)
        if base is None or base.name in seen:  # unknown or a cycle: reported by validation
            return kpi
        seen.add(base.name)
        kpi = base
    return kpi


def additivity(kpi: Kpi, kpis: Mapping[str, Kpi]) -> str:
    """How a KPI's period values combine over several periods (windows, period-to-date,
    target spreading): 'additive' values sum; 'ratio' values are Σ numerator / Σ denominator;
    'none' must be recomputed from rows. An offset KPI is 'none': its rows are its base's of
    other periods, so its days do not add up to its months (month ends repeat or skip days)."""
    if kpi.kind == "simple":
        return "additive" if kpi.agg in ADDITIVE else "ratio" if kpi.agg == "average" else "none"
    if kpi.kind == "ratio":
        inputs = [kpis.get(kpi.numerator or ""), kpis.get(kpi.denominator or "")]
        if all(i is not None and i.kind == "simple" and i.agg in ADDITIVE for i in inputs):
            return "ratio"
    return "none"


def target_carry(kpi: Kpi, kpis: Mapping[str, Kpi]) -> str:
    """How a target stated at one grain carries to the others: 'sum' (spread over days and
    summed: amounts, counts), 'exact' (only at the grain it is stated at: distinct counts),
    'level' (the same value at every grain: rates, averages, levels). An offset of an amount
    or count is 'exact': its value is a whole earlier period, even in the one running."""
    if additivity(kpi, kpis) == "additive":
        return "sum"
    if kpi.kind == "simple" and kpi.agg == "count_distinct":
        return "exact"
    base = base_of(kpi, kpis)
    if base is not kpi and target_carry(base, kpis) != "level":
        return "exact"
    return "level"
