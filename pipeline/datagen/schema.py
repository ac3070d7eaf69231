"""The raw tables' contract (docs/data-model.md) as data: sources, columns, DuckDB types, keys."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """One raw table: where it comes from, its columns with DuckDB types, and its key."""

    source: str
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    description: str

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def types(self) -> dict[str, str]:
        return dict(self.columns)


_ID = "BIGINT"
_TS = "TIMESTAMP"
_MONEY = "DECIMAL(10,2)"
_BIG_MONEY = "DECIMAL(12,2)"

TABLES: tuple[Table, ...] = (
    Table(
        "shop", "customers",
        (("customer_id", _ID), ("signed_up_at", _TS), ("acquisition_channel", "VARCHAR"),
         ("region", "VARCHAR"), ("segment", "VARCHAR")),
        ("customer_id",),
        "Shop accounts, one per customer, with the channel that brought them.",
    ),
    Table(
        "shop", "products",
        (("product_id", _ID), ("product_name", "VARCHAR"), ("category", "VARCHAR"),
         ("price", _MONEY), ("unit_cost", _MONEY), ("launched_on", "DATE")),
        ("product_id",),
        "The catalogue: current list price and unit cost per product.",
    ),
    Table(
        "shop", "orders",
        (("order_id", _ID), ("customer_id", _ID), ("ordered_at", _TS), ("status", "VARCHAR"),
         ("channel", "VARCHAR"), ("device", "VARCHAR")),
        ("order_id",),
        "Orders with their current status at the end of the history.",
    ),
    Table(
        "shop", "order_items",
        (("order_item_id", _ID), ("order_id", _ID), ("product_id", _ID),
         ("quantity", "INTEGER"), ("unit_price", _MONEY), ("discount_amount", _MONEY)),
        ("order_item_id",),
        "Order lines: product, quantity, price at order time and discount.",
    ),
    Table(
        "shop", "returns",
        (("return_id", _ID), ("order_item_id", _ID), ("returned_at", _TS),
         ("reason", "VARCHAR"), ("refund_amount", _MONEY)),
        ("return_id",),
        "Returned order items (at most one return per item) and their refunds.",
    ),
    Table(
        "shop", "shipments",
        (("shipment_id", _ID), ("order_id", _ID), ("carrier", "VARCHAR"),
         ("shipped_at", _TS), ("delivered_at", _TS)),
        ("shipment_id",),
        "One shipment per shipped order; delivered_at is empty while in transit.",
    ),
    Table(
        "shop", "inventory_snapshots",
        (("snapshot_date", "DATE"), ("product_id", _ID), ("quantity_on_hand", "INTEGER")),
        ("snapshot_date", "product_id"),
        "End-of-day stock per product and day, from the product's launch.",
    ),
    Table(
        "web", "sessions",
        (("session_id", _ID), ("customer_id", _ID), ("started_at", _TS), ("source", "VARCHAR"),
         ("medium", "VARCHAR"), ("campaign", "VARCHAR"), ("landing_page", "VARCHAR"),
         ("device", "VARCHAR"), ("pageviews", "INTEGER"), ("duration_seconds", "INTEGER"),
         ("order_id", _ID)),
        ("session_id",),
        "Web analytics sessions; order_id is the order the session converted to.",
    ),
    Table(
        "marketing", "ad_spend",
        (("spend_date", "DATE"), ("channel", "VARCHAR"), ("campaign", "VARCHAR"),
         ("impressions", _ID), ("clicks", _ID), ("spend", _MONEY)),
        ("spend_date", "channel", "campaign"),
        "Daily paid media spend, impressions and clicks per channel and campaign.",
    ),
    Table(
        "marketing", "email_campaigns",
        (("email_campaign_id", _ID), ("campaign_name", "VARCHAR"), ("sent_at", _TS),
         ("sends", _ID), ("opens", _ID), ("clicks", _ID)),
        ("email_campaign_id",),
        "Newsletter sends with opens and clicks.",
    ),
    Table(
        "marketing", "referrals",
        (("referral_id", _ID), ("referrer_customer_id", _ID), ("referred_customer_id", _ID),
         ("referred_at", _TS)),
        ("referral_id",),
        "Customer-to-customer referrals that led to a signup.",
    ),
    Table(
        "crm", "leads",
        (("lead_id", _ID), ("source", "VARCHAR"), ("created_at", _TS), ("qualified_at", _TS),
         ("converted_at", _TS)),
        ("lead_id",),
        "Trade leads (designers, hotels, offices) and their qualification and conversion.",
    ),
    Table(
        "crm", "deals",
        (("deal_id", _ID), ("lead_id", _ID), ("sales_rep_id", _ID), ("stage", "VARCHAR"),
         ("amount", _BIG_MONEY), ("created_on", "DATE"), ("closed_on", "DATE")),
        ("deal_id",),
        "One deal per converted lead, owned by a sales rep.",
    ),
    Table(
        "crm", "tickets",
        (("ticket_id", _ID), ("customer_id", _ID), ("order_id", _ID), ("agent_id", _ID),
         ("created_at", _TS), ("first_response_at", _TS), ("resolved_at", _TS),
         ("channel", "VARCHAR"), ("category", "VARCHAR"), ("csat_score", "INTEGER")),
        ("ticket_id",),
        "Customer support tickets with response and resolution times and CSAT.",
    ),
    Table(
        "crm", "nps_responses",
        (("nps_response_id", _ID), ("customer_id", _ID), ("responded_at", _TS),
         ("score", "INTEGER")),
        ("nps_response_id",),
        "Net promoter survey answers (0-10) sent after delivery.",
    ),
    Table(
        "hr", "employees",
        (("employee_id", _ID), ("department", "VARCHAR"), ("job_title", "VARCHAR"),
         ("hired_on", "DATE"), ("left_on", "DATE")),
        ("employee_id",),
        "Employees with hire and leave dates.",
    ),
    Table(
        "hr", "employee_surveys",
        (("employee_survey_id", _ID), ("employee_id", _ID), ("surveyed_on", "DATE"),
         ("satisfaction_score", "INTEGER")),
        ("employee_survey_id",),
        "Quarterly employee pulse survey answers (1-5).",
    ),
    Table(
        "finance", "operating_costs",
        (("cost_month", "DATE"), ("cost_category", "VARCHAR"), ("amount", _BIG_MONEY)),
        ("cost_month", "cost_category"),
        "Monthly operating costs per category.",
    ),
)

TABLE_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}

# Foreign keys (table, column) -> (referenced table, column): the tests and defects use them.
FOREIGN_KEYS: tuple[tuple[str, str, str, str], ...] = (
    ("orders", "customer_id", "customers", "customer_id"),
    ("order_items", "order_id", "orders", "order_id"),
    ("order_items", "product_id", "products", "product_id"),
    ("returns", "order_item_id", "order_items", "order_item_id"),
    ("shipments", "order_id", "orders", "order_id"),
    ("inventory_snapshots", "product_id", "products", "product_id"),
    ("sessions", "customer_id", "customers", "customer_id"),
    ("sessions", "order_id", "orders", "order_id"),
    ("referrals", "referrer_customer_id", "customers", "customer_id"),
    ("referrals", "referred_customer_id", "customers", "customer_id"),
    ("deals", "lead_id", "leads", "lead_id"),
    ("deals", "sales_rep_id", "employees", "employee_id"),
    ("tickets", "customer_id", "customers", "customer_id"),
    ("tickets", "order_id", "orders", "order_id"),
    ("tickets", "agent_id", "employees", "employee_id"),
    ("nps_responses", "customer_id", "customers", "customer_id"),
    ("employee_surveys", "employee_id", "employees", "employee_id"),
)

# Accepted values of the categorical columns.
ACCEPTED_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("customers", "acquisition_channel"): (
        "organic_search", "paid_search", "social", "email", "referral", "direct"),
    ("customers", "region"): ("northeast", "south", "midwest", "west"),
    ("customers", "segment"): ("consumer", "trade"),
    ("products", "category"): (
        "furniture", "lighting", "textiles", "wall_decor", "kitchen", "outdoor"),
    ("orders", "status"): ("placed", "shipped", "delivered", "cancelled", "returned"),
    ("orders", "channel"): ("web", "app", "marketplace"),
    ("orders", "device"): ("desktop", "mobile", "tablet"),
    ("returns", "reason"): (
        "wrong_item", "damaged", "not_as_described", "changed_mind", "late_delivery"),
    ("shipments", "carrier"): ("ups", "fedex", "usps", "dhl"),
    ("sessions", "source"): (
        "google", "bing", "facebook", "instagram", "pinterest", "newsletter", "partner",
        "direct"),
    ("sessions", "medium"): ("organic", "cpc", "social", "email", "referral", "none"),
    ("sessions", "device"): ("desktop", "mobile", "tablet"),
    ("ad_spend", "channel"): ("paid_search", "social", "display", "affiliate"),
    ("leads", "source"): ("website", "trade_show", "referral", "outbound", "partner"),
    ("deals", "stage"): ("prospecting", "proposal", "negotiation", "won", "lost"),
    ("tickets", "channel"): ("email", "chat", "phone"),
    ("tickets", "category"): ("shipping", "product", "billing", "returns", "complaint"),
    ("employees", "department"): (
        "customer_service", "sales", "marketing", "operations", "engineering", "finance"),
    ("operating_costs", "cost_category"): (
        "salaries", "rent", "software", "logistics", "marketing_other"),
}
