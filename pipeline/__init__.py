"""Metrics-as-code KPI pipeline: metric YAML compiled into dbt KPI marts."""

import warnings

__version__ = "0.1.0"

# Great Expectations imports pyspark when it is installed (the `spark` extra), and pyspark 4
# warns on import that it does not fully support pandas 3: nothing here uses pyspark's
# pandas API, so the warning is noise on every command's stderr.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
