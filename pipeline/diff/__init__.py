"""`kpi diff`: what a change to the metrics does to the definitions, the SQL and the numbers.

Stages, one module each, each a plain function:

1. `git`: `materialize_ref` writes a git ref's tree to a folder (`git archive`, nothing in
   the repository changes); `project.snapshot_worktree` copies the working tree's project.
2. `sides`: `load_side` loads a side's metric files (and, for the working tree, compiles
   them, so the numbers follow the YAML even before `kpi compile`); `build_both` runs
   `dbt seed` and `dbt run --select +kpi_values` into a temporary DuckDB file per side
   (when both sides have the same seeds, the working tree starts from a copy of the base's
   warehouse and rebuilds only what changed).
3. `compare`: definitions, generated SQL and `analytics.kpi_values` rows into a
   `DiffReport` (`report`).
4. `render`: the report in the terminal, as Markdown and as JSON.

`run.diff` runs them all. Nothing here writes to the project's own warehouse or target/.
"""

from pipeline.diff.compare import compare_values
from pipeline.diff.render import problems, render_json, render_markdown, render_terminal
from pipeline.diff.report import DiffError, DiffReport, Move
from pipeline.diff.run import diff

__all__ = [
    "DiffError",
    "DiffReport",
    "Move",
    "compare_values",
    "diff",
    "problems",
    "render_json",
    "render_markdown",
    "render_terminal",
]
