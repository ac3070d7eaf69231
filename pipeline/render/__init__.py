"""Render: a Plan → sqlglot trees → dbt model files."""
