"""The KPIs of the Cloudberry Analytics example (examples/saas) recomputed in Python from its
raw seed CSVs: each mart row a KPI reads is re-derived here from
`examples/saas/seeds/<source>/raw_<table>.csv` (nothing from its SQL), each KPI of
examples/saas/metrics has an entry in `ORACLE`; aggregation, periods and kinds come from
`raw_oracle`, `oracle` and `kinds_oracle`.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property

from tests.support import kinds_oracle
from tests.support.raw_oracle import (
    TOTAL,
    Definition,
    Derived,
    Kind,
    Measure,
    Ratio,
    RawMarts,
    Row,
    _code,
    _col,
    _date,
    _dec,
    _int,
    _kind_rows,
    _ts,
    div,
)

# the dimensions each KPI is published by, as mart columns of the rows below
DIMENSIONS: dict[str, list[str]] = {
    "mrr": ["plan", "segment"],
    "paying_accounts": ["plan", "segment"],
    "arpa": ["plan", "segment"],
    "new_mrr": ["segment"],
    "logo_churn": ["segment"],
    "signups": ["segment", "region"],
    "trial_to_paid": ["segment"],
    "billings": ["segment"],
    "billed_accounts": ["segment"],
    "billings_per_account": ["segment"],
    "support_tickets": ["priority", "segment"],
    "support_load": ["segment"],
}


class RawCloudberry(RawMarts):
    """The example's marts from its raw CSVs; a segment or region beside a row is its
    account's (the marts denormalize them, or KPIs reach them through `accounts`)."""

    @cached_property
    def accounts(self) -> list[Row]:
        return [
            {
                "account_id": _int(r["account_id"]),
                "signed_up_at": _ts(r["signed_up_at"]),
                "segment": _code(r["segment"]),
                "region": _code(r["region"]),
            }
            for r in self._raw("crm", "accounts")
        ]

    @cached_property
    def _account(self) -> dict[int | None, Row]:
        return {a["account_id"]: a for a in self.accounts}

    def _of_account(self, account_id: int | None) -> dict[str, str | None]:
        account = self._account[account_id]
        return {"segment": account["segment"], "region": account["region"]}

    @cached_property
    def trials(self) -> list[Row]:
        rows = []
        for r in self._raw("crm", "trials"):
            started_at = _ts(r["started_at"])
            rows.append({
                "account_id": _int(r["account_id"]),
                "started_on": started_at.date() if started_at else None,
                **self._of_account(_int(r["account_id"])),
            })
        return rows

    @cached_property
    def subscriptions(self) -> list[Row]:
        rows = [
            {
                "subscription_id": _int(r["subscription_id"]),
                "account_id": _int(r["account_id"]),
                "plan": _code(r["plan"]),
                "mrr": _dec(r["mrr"]),
                "started_on": _date(r["started_on"]),
                "ended_on": _date(r["ended_on"]),
                "end_reason": _code(r["end_reason"]),
                **self._of_account(_int(r["account_id"])),
            }
            for r in self._raw("billing", "subscriptions")
        ]
        first: dict[int | None, dt.date] = {}
        for r in rows:
            first[r["account_id"]] = min(r["started_on"], first.get(r["account_id"], r["started_on"]))
        for r in rows:
            r["is_first"] = r["started_on"] == first[r["account_id"]]
        return rows

    @cached_property
    def mrr_movements(self) -> list[Row]:
        """Per account in order of its periods: the first starts `new`, a later one at
        another MRR is an expansion or contraction, a cancelled one churns the day after."""
        rows: list[Row] = []
        by_account: dict[int | None, list[Row]] = {}
        for r in self.subscriptions:
            by_account.setdefault(r["account_id"], []).append(r)
        for periods in by_account.values():
            previous = None
            for r in sorted(periods, key=lambda p: p["started_on"]):
                if previous is None:
                    rows.append(self._movement(r["started_on"], "new", r["mrr"], r))
                elif r["mrr"] != previous:
                    kind = "expansion" if r["mrr"] > previous else "contraction"
                    rows.append(self._movement(r["started_on"], kind, r["mrr"] - previous, r))
                if r["end_reason"] == "cancelled":
                    day = r["ended_on"] + dt.timedelta(days=1)
                    rows.append(self._movement(day, "churn", -r["mrr"], r))
                previous = r["mrr"]
        return rows

    @staticmethod
    def _movement(day: dt.date, kind: str, delta: object, period: Row) -> Row:
        return {"movement_on": day, "movement_type": kind, "mrr_delta": delta,
                "segment": period["segment"]}

    @cached_property
    def invoices(self) -> list[Row]:
        return [
            {
                "account_id": _int(r["account_id"]),
                "issued_on": _date(r["issued_on"]),
                "amount": _dec(r["amount"]),
                "status": _code(r["status"]),
                **self._of_account(_int(r["account_id"])),
            }
            for r in self._raw("billing", "invoices")
        ]

    @cached_property
    def tickets(self) -> list[Row]:
        return [
            {
                "created_at": _ts(r["created_at"]),
                "priority": _code(r["priority"]),
                **self._of_account(_int(r["account_id"])),
            }
            for r in self._raw("support", "tickets")
        ]


def _billed(row: Row) -> bool:
    return row["status"] is not None and row["status"] != "void"


def _intervals(m: RawCloudberry, dimension: str, week: str, **fields: object) -> kinds_oracle.Rows:
    return _kind_rows(m.subscriptions, dimension, week, start="started_on", end="ended_on", **fields)


ORACLE: dict[str, Definition] = {
    # recurring_revenue.yml
    "mrr": Kind("snapshot", lambda m, grain, dim, week: kinds_oracle.snapshot(
        _intervals(m, dim, week, amount=_col("mrr")), grain, dim)),
    "paying_accounts": Kind("snapshot", lambda m, grain, dim, week: kinds_oracle.snapshot(
        _intervals(m, dim, week, amount=kinds_oracle.counted("account_id")), grain, dim)),
    "arpa": Derived(("mrr", "paying_accounts"), div),
    "new_mrr": Measure(
        "mrr_movements", "movement_on", "sum", _col("mrr_delta"),
        lambda r: r["movement_type"] == "new",
    ),
    "logo_churn": Kind("churn", lambda m, grain, dim, week: kinds_oracle.retention(
        _intervals(m, dim, week, entity="account_id"), grain, dim, churn=True)),
    # acquisition.yml
    "signups": Measure("accounts", "signed_up_at", "count", lambda r: 1),
    "trial_to_paid": Kind("conversion", lambda m, grain, dim, week: kinds_oracle.conversion(
        _kind_rows(m.trials, dim, week, time="started_on", entity="account_id"),
        _kind_rows(m.subscriptions, TOTAL, week, time="started_on", entity="account_id",
                   where=_col("is_first")),
        30, grain, dim)),
    # billing.yml
    "billings": Measure("invoices", "issued_on", "sum", _col("amount"), _billed),
    "billed_accounts": Measure("invoices", "issued_on", "count_distinct", _col("account_id"), _billed),
    "billings_per_account": Ratio("billings", "billed_accounts"),
    # support.yml
    "support_tickets": Measure("tickets", "created_at", "count", lambda r: 1),
    "support_load": Derived(("support_tickets", "paying_accounts"), div),
}
