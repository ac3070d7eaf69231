"""Employees (hires, ~15% yearly turnover, headcount ~40 → ~70 at scale 1, growing with
sqrt(scale)) and their quarterly pulse surveys."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .calendar import END, START, Month, months
from .rng import rng

# department: (share of headcount, job titles with weights, mean satisfaction 1-5)
DEPARTMENTS: tuple[tuple[str, float, tuple[tuple[str, float], ...], float], ...] = (
    ("customer_service", 0.25, (("Support Agent", 0.85), ("Support Lead", 0.15)), 3.6),
    ("sales", 0.15, (("Account Executive", 0.8), ("Sales Manager", 0.2)), 3.8),
    ("marketing", 0.12, (("Marketing Specialist", 0.5), ("Growth Marketer", 0.3),
                         ("Marketing Manager", 0.2)), 3.9),
    ("operations", 0.25, (("Warehouse Associate", 0.6), ("Logistics Coordinator", 0.3),
                          ("Operations Manager", 0.1)), 3.5),
    ("engineering", 0.15, (("Software Engineer", 0.6), ("Data Analyst", 0.25),
                           ("Engineering Manager", 0.15)), 4.0),
    ("finance", 0.08, (("Accountant", 0.6), ("Financial Analyst", 0.4)), 3.8),
)
DEPARTMENT_NAMES = tuple(d[0] for d in DEPARTMENTS)
MONTHLY_LEAVE_PROBABILITY = 0.0135  # ≈ 15% a year
HEADCOUNT_START, HEADCOUNT_END = 40.0, 70.0
NEVER = np.datetime64("2262-01-01", "D")  # stands for "still employed" in comparisons


def employees(scale: float, seed: int) -> pd.DataFrame:
    """The whole employee history: the initial team, then monthly leavers and hires."""
    gen = rng(seed, "employees", -1)
    size = np.sqrt(scale)
    span = float((END - START).astype(np.int64))
    dept: list[np.ndarray] = []
    hired: list[np.ndarray] = []
    left: list[np.ndarray] = []
    for d, (_, share, _, _) in enumerate(DEPARTMENTS):
        n0 = max(2, round(HEADCOUNT_START * size * share))
        dept.append(np.full(n0, d))
        hired.append(np.datetime64("2019-01-07", "D") + gen.integers(0, 2100, n0))
        left.append(np.full(n0, NEVER))
    for month in months():
        days = month.days
        for d, (_, share, _, _) in enumerate(DEPARTMENTS):
            mine = np.flatnonzero(np.concatenate(dept) == d)
            all_left = np.concatenate(left)
            active = mine[all_left[mine] == NEVER]
            leaving = active[gen.random(len(active)) < MONTHLY_LEAVE_PROBABILITY]
            if len(active) - len(leaving) < 2:  # keep every team staffed
                leaving = leaving[: max(0, len(active) - 2)]
            left_days = days[gen.integers(0, len(days), len(leaving))]
            _set_left(left, leaving, left_days)
            progress = float((month.last - START).astype(np.int64)) / span
            target = (HEADCOUNT_START + (HEADCOUNT_END - HEADCOUNT_START) * progress) * size * share
            n_new = max(0, round(target) - (len(active) - len(leaving)))
            if n_new:
                dept.append(np.full(n_new, d))
                hired.append(days[gen.integers(0, len(days), n_new)])
                left.append(np.full(n_new, NEVER))
    dept_all = np.concatenate(dept)
    hired_all = np.concatenate(hired)
    left_all = np.concatenate(left)
    # A leaver always leaves after being hired.
    left_all = np.where(left_all <= hired_all, hired_all + 30, left_all)
    left_all = np.where(left_all > END, NEVER, left_all)
    order = np.lexsort((dept_all, hired_all))
    dept_all, hired_all, left_all = dept_all[order], hired_all[order], left_all[order]
    titles = np.empty(len(dept_all), dtype=object)
    for d, (_, _, jobs, _) in enumerate(DEPARTMENTS):
        mine = dept_all == d
        names = np.array([j[0] for j in jobs], dtype=object)
        weights = np.array([j[1] for j in jobs])
        titles[mine] = names[gen.choice(len(jobs), size=int(mine.sum()), p=weights)]
    return pd.DataFrame({
        "employee_id": np.arange(1, len(dept_all) + 1, dtype=np.int64),
        "department": pd.array(np.array(DEPARTMENT_NAMES)[dept_all], dtype="str"),
        "job_title": pd.array(titles, dtype="str"),
        "hired_on": hired_all.astype("datetime64[s]"),
        "left_on": pd.Series(
            np.where(left_all == NEVER, np.datetime64("NaT"), left_all).astype("datetime64[s]")
        ),
    })


def _set_left(left: list[np.ndarray], positions: np.ndarray, days: np.ndarray) -> None:
    """Write leave dates at global positions into the list of per-batch arrays."""
    offset = 0
    for arr in left:
        mine = (positions >= offset) & (positions < offset + len(arr))
        arr[positions[mine] - offset] = days[mine]
        offset += len(arr)


class Staff:
    """Who works where when: picks employees of a department employed on given days."""

    def __init__(self, staff: pd.DataFrame) -> None:
        self.ids = staff["employee_id"].to_numpy()
        self.department = staff["department"].to_numpy(dtype=object)
        self.hired = staff["hired_on"].to_numpy().astype("datetime64[D]")
        left = staff["left_on"].to_numpy().astype("datetime64[D]")
        self.left = np.where(np.isnat(left), NEVER, left)

    def employed_on(self, day: np.datetime64) -> np.ndarray:
        return (self.hired <= day) & (self.left > day)

    def pick(self, gen: np.random.Generator, department: str, days: np.ndarray) -> np.ndarray:
        """A random employee of `department` employed on each of `days` (datetime64[D])."""
        out = np.zeros(len(days), dtype=np.int64)
        in_dept = self.department == department
        uniq, inv = np.unique(days, return_inverse=True)
        for i, day in enumerate(uniq):
            candidates = self.ids[in_dept & self.employed_on(day)]
            rows = np.flatnonzero(inv == i)
            out[rows] = candidates[gen.integers(0, len(candidates), len(rows))]
        return out


def surveys(staff: Staff, month: Month, first_id: int, seed: int) -> pd.DataFrame:
    """Quarterly pulse (the 15th of Feb, May, Aug, Nov): ~85% of employees answer."""
    gen = rng(seed, "employee_surveys", month.index)
    day = month.first + 14
    month_of_year = int(month.first.astype("datetime64[M]").astype(np.int64) % 12) + 1
    ids = np.array([], dtype=np.int64)
    scores = np.array([], dtype=np.int64)
    if month_of_year in (2, 5, 8, 11) and day <= month.last:
        present = staff.employed_on(day) & (gen.random(len(staff.ids)) < 0.85)
        ids = staff.ids[present]
        mean = {d[0]: d[3] for d in DEPARTMENTS}
        base = np.array([mean[d] for d in staff.department[present]])
        drift = 0.15 * np.sin(month.index / 3.0)  # morale moves a little over time
        scores = np.clip(np.rint(gen.normal(base + drift, 0.9)), 1, 5).astype(np.int64)
    n = len(ids)
    return pd.DataFrame({
        "employee_survey_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "employee_id": ids.astype(np.int64),
        "surveyed_on": np.full(n, day).astype("datetime64[s]"),
        "satisfaction_score": scores.astype(np.int32),
    })
