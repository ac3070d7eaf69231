"""The metric YAML language: schema, model, loading and validation."""
