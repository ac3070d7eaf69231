"""Finance: monthly operating costs per category.

The demo's head count is fixed by the HR story, not by payroll, so costs follow the shop's
activity instead (shares of net sales, a rent per unit of scale, a cost per shipped order):
margins stay plausible at every scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .calendar import Month

SALARIES = 0.08  # share of the month's net sales
SOFTWARE = 0.02
RENT_PER_SCALE = {2024: 650.0, 2025: 650.0, 2026: 750.0}  # a month, at scale 1
LOGISTICS_PER_ORDER = 6.5
OTHER_MARKETING = 0.08  # share of the month's ad spend (agencies, content, tools)
CATEGORIES = ("salaries", "rent", "software", "logistics", "marketing_other")


def operating_costs(
    gen: np.random.Generator,
    month: Month,
    scale: float,
    net_sales: float,
    shipped_orders: int,
    ad_spend: float,
) -> pd.DataFrame:
    """One row per category; fixed costs of a partial month are charged pro rata."""
    first = month.first.astype("datetime64[M]")
    days_in_month = int(((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]"))
                        .astype(np.int64))
    share = len(month.days) / days_in_month
    year = int(first.astype("datetime64[Y]").astype(np.int64)) + 1970
    amounts = np.array([
        SALARIES * net_sales + 600.0 * scale * share,
        RENT_PER_SCALE[year] * scale * share,
        SOFTWARE * net_sales + 150.0 * scale * share,
        LOGISTICS_PER_ORDER * shipped_orders,
        OTHER_MARKETING * ad_spend + 100.0 * scale * share,
    ])
    amounts = np.round(np.maximum(amounts * gen.uniform(0.97, 1.03, len(amounts)), 1.0), 2)
    return pd.DataFrame({
        "cost_month": np.full(len(CATEGORIES), first).astype("datetime64[s]"),
        "cost_category": pd.Series(CATEGORIES, dtype="str"),
        "amount": amounts,
    })
