"""Alerts on what changed since the previous published run (docs/alerts.md).

`rules` reads the `alerts:` section of the metric files, `events` compares the published
run's `kpi_values` with the previous run's and keeps what was sent, `messages` renders the
events (terminal, JSON, Markdown, Slack), `webhook` posts them, `job` ties them together.
"""
