# The two commands of the README: `make demo` runs the main job, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/kpi: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $(BIN)/kpi

# The demo's data ends on 2026-11-15: its freshness is judged as of that day.
DEMO_AS_OF ?= 2026-11-15

demo: $(BIN)/kpi
	$(BIN)/kpi build --as-of $(DEMO_AS_OF)

test: $(BIN)/kpi
	$(BIN)/kpi compile --check
	$(BIN)/kpi compile --check --project-dir examples/saas
	$(BIN)/ruff check pipeline tests bench examples
	$(BIN)/mypy
	$(BIN)/pytest

clean:
	rm -rf warehouse target logs dbt_packages
