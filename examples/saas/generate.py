"""Writes the raw data of Cloudberry Analytics (seeds/<source>/raw_<table>.csv).

Deterministic (a fixed seed, plain Python): run `python generate.py` in this folder and
the CSVs come out byte-identical. The company sells a self-serve analytics product:
every sign-up starts a 14-day trial, some trials convert to a monthly subscription,
subscriptions renew monthly and may upgrade, downgrade or cancel at a renewal; every
renewal is invoiced, and paying accounts open support tickets.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from pathlib import Path

SEED = 2026
FIRST_DAY = dt.date(2025, 1, 1)
LAST_DAY = dt.date(2026, 10, 31)
SEEDS = Path(__file__).resolve().parent / "seeds"

SEGMENTS = {"smb": 0.66, "mid_market": 0.26, "enterprise": 0.08}
REGIONS = {"amer": 0.5, "emea": 0.35, "apac": 0.15}
PLANS = {"starter": 49, "growth": 149, "business": 499, "enterprise": 1500}
PLAN_ORDER = list(PLANS)
FIRST_PLAN = {  # plans a converting trial of each segment starts on
    "smb": {"starter": 0.7, "growth": 0.3},
    "mid_market": {"growth": 0.6, "business": 0.4},
    "enterprise": {"business": 0.5, "enterprise": 0.5},
}
CONVERSION = {"smb": 0.27, "mid_market": 0.34, "enterprise": 0.42}
MONTHLY_CHURN = {"smb": 0.035, "mid_market": 0.02, "enterprise": 0.01}
TICKETS_PER_MONTH = {"smb": 0.5, "mid_market": 1.0, "enterprise": 2.0}


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def poisson(rng: random.Random, mean: float) -> int:
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def at(day: dt.date, rng: random.Random, first_hour: int = 7, last_hour: int = 21) -> dt.datetime:
    seconds = rng.randrange(first_hour * 3600, last_hour * 3600)
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)


def signups_per_day(day: dt.date) -> float:
    """Growing demand, with a summer and a year-end lull."""
    grown = 1.1 + 1.4 * (day - FIRST_DAY).days / (LAST_DAY - FIRST_DAY).days
    season = {8: 0.75, 12: 0.7}.get(day.month, 1.0)
    weekend = 0.5 if day.weekday() >= 5 else 1.1
    return grown * season * weekend


def seats_mrr(rng: random.Random, plan: str, seats: int) -> float:
    return round(PLANS[plan] * seats * (0.9 if seats >= 5 else 1.0), 2)


def generate() -> dict[str, list[dict[str, object]]]:
    rng = random.Random(SEED)
    tables: dict[str, list[dict[str, object]]] = {
        "accounts": [], "trials": [], "subscriptions": [], "invoices": [], "tickets": []
    }
    day = FIRST_DAY
    while day <= LAST_DAY:
        for _ in range(poisson(rng, signups_per_day(day))):
            signup(rng, tables, day)
        day += dt.timedelta(days=1)
    tables["tickets"].sort(key=lambda row: str(row["created_at"]))
    for number, row in enumerate(tables["tickets"], start=1):
        row["ticket_id"] = number
    return tables


def signup(rng: random.Random, tables: dict[str, list[dict[str, object]]], day: dt.date) -> None:
    account_id = len(tables["accounts"]) + 1
    segment, region = pick(rng, SEGMENTS), pick(rng, REGIONS)
    signed_up_at = at(day, rng)
    tables["accounts"].append({
        "account_id": account_id, "signed_up_at": signed_up_at,
        "segment": segment, "region": region,
    })
    converted_at = None
    if rng.random() < CONVERSION[segment]:
        # most convert during the 14-day trial, a few weeks after it ends
        wait = rng.randint(2, 16) if rng.random() < 0.85 else rng.randint(17, 60)
        converted_at = at(day + dt.timedelta(days=wait), rng)
        if converted_at.date() > LAST_DAY:
            converted_at = None
    tables["trials"].append({
        "trial_id": account_id, "account_id": account_id,
        "started_at": signed_up_at, "converted_at": converted_at,
    })
    if converted_at is not None:
        subscribe(rng, tables, account_id, segment, converted_at.date())
    # trial accounts ask a question now and then
    if rng.random() < 0.25:
        ticket(rng, tables, account_id, day + dt.timedelta(days=rng.randint(1, 10)), "low")


def subscribe(
    rng: random.Random, tables: dict[str, list[dict[str, object]]],
    account_id: int, segment: str, start: dt.date,
) -> None:
    plan = pick(rng, FIRST_PLAN[segment])
    seats = rng.choice([1, 1, 2, 3, 5, 8]) if segment != "smb" else rng.choice([1, 1, 1, 2, 3])
    renewal, months = start, 0
    while True:
        mrr = seats_mrr(rng, plan, seats)
        row: dict[str, object] = {
            "subscription_id": len(tables["subscriptions"]) + 1, "account_id": account_id,
            "plan": plan, "seats": seats, "mrr": mrr, "started_on": renewal,
            "ended_on": None, "end_reason": None,
        }
        tables["subscriptions"].append(row)
        while True:  # one billing month at a time until a change, a cancellation or the end
            invoice(rng, tables, row, renewal, mrr)
            for _ in range(poisson(rng, TICKETS_PER_MONTH[segment] * (2.0 if months == 0 else 1.0))):
                created = renewal + dt.timedelta(days=rng.randint(0, 27))
                ticket(rng, tables, account_id, created, None)
            renewal, months = add_months(start, months + 1), months + 1
            if renewal > LAST_DAY:
                return
            churn = MONTHLY_CHURN[segment] * (1.6 if renewal.month in (1, 12) else 1.0)
            draw = rng.random()
            if draw < churn:
                row["ended_on"], row["end_reason"] = renewal - dt.timedelta(days=1), "cancelled"
                return
            if draw < churn + 0.05:
                level = PLAN_ORDER.index(plan)
                if rng.random() < 0.75:  # expansion: more seats or the next plan
                    if rng.random() < 0.6 or level == len(PLAN_ORDER) - 1:
                        seats += rng.randint(1, 3)
                    else:
                        plan = PLAN_ORDER[level + 1]
                elif seats > 1:
                    seats -= 1
                elif level > 0:
                    plan = PLAN_ORDER[level - 1]
                else:
                    continue
                row["ended_on"], row["end_reason"] = renewal - dt.timedelta(days=1), "changed"
                break


def invoice(
    rng: random.Random, tables: dict[str, list[dict[str, object]]],
    subscription: dict[str, object], issued_on: dt.date, amount: float,
) -> None:
    age = (LAST_DAY - issued_on).days
    draw = rng.random()
    status = "void" if draw < 0.02 else "open" if (age < 30 and draw < 0.5) or draw > 0.985 else "paid"
    tables["invoices"].append({
        "invoice_id": len(tables["invoices"]) + 1,
        "account_id": subscription["account_id"],
        "subscription_id": subscription["subscription_id"],
        "issued_on": issued_on, "amount": f"{amount:.2f}", "status": status,
    })


def ticket(
    rng: random.Random, tables: dict[str, list[dict[str, object]]],
    account_id: int, day: dt.date, priority: str | None,
) -> None:
    if day > LAST_DAY:
        return
    created_at = at(day, rng, 0, 24)
    resolved_at: dt.datetime | None = created_at + dt.timedelta(minutes=rng.randint(20, 72 * 60))
    if resolved_at and resolved_at.date() > LAST_DAY:
        resolved_at = None  # still open at the end of the history
    tables["tickets"].append({
        "ticket_id": 0, "account_id": account_id, "created_at": created_at,
        "resolved_at": resolved_at,
        "priority": priority or pick(rng, {"low": 0.3, "normal": 0.5, "high": 0.15, "urgent": 0.05}),
        "channel": pick(rng, {"email": 0.5, "chat": 0.4, "phone": 0.1}),
    })


SOURCES = {
    "crm": ["accounts", "trials"],
    "billing": ["subscriptions", "invoices"],
    "support": ["tickets"],
}


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def write(tables: dict[str, list[dict[str, object]]], seeds: Path = SEEDS) -> None:
    for source, names in SOURCES.items():
        for name in names:
            path = seeds / source / f"raw_{name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = tables[name]
            with path.open("w", newline="", encoding="utf-8") as file:
                writer = csv.writer(file, lineterminator="\n")
                writer.writerow(list(rows[0]))
                writer.writerows([cell(v) for v in row.values()] for row in rows)


if __name__ == "__main__":
    write(generate())
