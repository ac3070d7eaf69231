"""Metrics-as-code KPI pipeline: metric YAML compiled into dbt KPI marts."""

__version__ = "0.1.0"
