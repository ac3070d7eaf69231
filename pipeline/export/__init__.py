"""Feeding BI tools: file exports of the published KPI marts, the KPI catalog, the HTML
scorecard and the terminal status table.

Every function here takes paths or data and returns data; nothing here runs dbt.

- `files.export` / `files.export_project`: Parquet (partitioned by grain), CSV and JSON of
  the published KPI marts, written to a staging folder and swapped in atomically;
- `catalog.build_catalog` / `catalog.write_catalog`: the KPI catalog (JSON, versioned
  schema `catalog.schema.json`);
- `scorecard.scorecard_html` / `scorecard.write_scorecard`: one self-contained HTML page;
- `status.status_table` / `status.print_status`: the same scorecard in a terminal.
"""

from __future__ import annotations
