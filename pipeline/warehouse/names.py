"""The warehouse's names: its schemas, the tool's own tables, run schemas, the published marts.

- `raw`: the raw tables, as `dbt seed` loads them (never read by BI tools).
- `run_<id>_input`: the gate's validated copy of every raw table for run `<id>`.
- `run_<id>`: everything dbt builds for run `<id>`.
- `analytics`: what BI tools read: one view per published table of the published run,
  plus the `_kpi_published` marker.
- `kpi_meta`: the runs, the row counts per table and run, the alerts sent.
- `quarantine`: the rows the gate set aside.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlglot import exp

from pipeline.plan.models import KPI_MARTS, VALUE_KEYS, WIDE_NAMES, WINDOW_KEYS
from pipeline.semantics.marts import WIDE_KEYS

PUBLISHED_SCHEMA = "analytics"
META_SCHEMA = "kpi_meta"
QUARANTINE_SCHEMA = "quarantine"
RAW_SCHEMA = "raw"
PUBLISHED_MARKER = "_kpi_published"  # the view saying which run is published, since when


@dataclass(frozen=True)
class Relation:
    """A table or view: [database.]schema.name; `str()` is that, `node()` the quoted tree."""

    schema: str
    name: str
    database: str | None = None

    def __str__(self) -> str:
        return ".".join(p for p in (self.database, self.schema, self.name) if p)

    def node(self, alias: str | None = None, catalog: str | None = None) -> exp.Table:
        """The quoted table (in another attached database: `catalog`)."""
        return exp.table_(
            self.name, db=self.schema, catalog=catalog or self.database, quoted=True, alias=alias
        )


RUNS_TABLE = Relation(META_SCHEMA, "_kpi_runs")
COUNTS_TABLE = Relation(META_SCHEMA, "_kpi_row_counts")
SENT_TABLE = Relation(META_SCHEMA, "_kpi_alerts_sent")
QUARANTINE_TABLE = Relation(QUARANTINE_SCHEMA, "quarantined_rows")

VALUES_MART, WINDOWS_MART, CATALOG_MART = KPI_MARTS[:3]
# the columns each published mart's rows are unique on (and exported in the order of)
MART_KEYS: dict[str, tuple[str, ...]] = {
    VALUES_MART: VALUE_KEYS,
    WINDOWS_MART: ("kpi", *WINDOW_KEYS),
    CATALOG_MART: ("kpi",),
    **{wide: WIDE_KEYS[:1] for wide in WIDE_NAMES.values()},
}


def values_table(schema: str = PUBLISHED_SCHEMA) -> Relation:
    """The long KPI table of a schema (the published one unless given)."""
    return Relation(schema, VALUES_MART)


# --- runs ---------------------------------------------------------------------------

_RUN_ID = r"r\d{8}t\d{6}_[0-9a-f]{6}"
RUN_SCHEMA = re.compile(rf"^run_({_RUN_ID})(_input)?$")  # a run's schema or its input schema


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dt%H%M%S")
    return f"r{stamp}_{secrets.token_hex(3)}"


def run_schema(run_id: str) -> str:
    """What dbt builds for the run (ValueError for anything but a run id)."""
    if not re.fullmatch(_RUN_ID, run_id):
        raise ValueError(f"not a run id: {run_id!r}")
    return f"run_{run_id}"


def input_schema(run_id: str) -> str:
    """The gate's validated copy of the raw tables for the run."""
    return f"{run_schema(run_id)}_input"
