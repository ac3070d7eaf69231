# The two commands of the README: `make demo` runs the main job, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/kpi: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres,spark]'
	touch $(BIN)/kpi

# The demo runs at the articles' scale (about $500k of online sales a month, 35 times the
# committed seeds) from the generator's Parquet files; its data ends on 2026-11-15, the day
# its freshness is judged as of.
DEMO_SCALE ?= 35
DEMO_RAW   ?= target/demo-raw
DEMO_AS_OF ?= 2026-11-15

demo: $(BIN)/kpi
	$(BIN)/kpi generate --format parquet --scale $(DEMO_SCALE) --out $(DEMO_RAW)
	$(BIN)/kpi build --as-of $(DEMO_AS_OF) --raw-parquet $(DEMO_RAW)

test: $(BIN)/kpi
	$(BIN)/kpi compile --check
	$(BIN)/kpi compile --check --project-dir examples/saas
	$(BIN)/ruff check pipeline tests bench examples
	$(BIN)/mypy
	$(BIN)/pytest

clean:
	rm -rf warehouse target logs dbt_packages
