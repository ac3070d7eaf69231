"""A corpus of broken metric files: each names the exact message and place it must get."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.catalog import read_catalog
from pipeline.compiler import check_files

FIXTURES = Path(__file__).parents[2] / "fixtures"
CORPUS = sorted((FIXTURES / "broken_metrics").glob("*.yml"))
ROOT = FIXTURES.parents[1]


@pytest.fixture(scope="module")
def catalog():
    return read_catalog(FIXTURES / "catalog" / "models", ROOT)


def test_the_corpus_covers_at_least_twenty_distinct_mistakes():
    assert len(CORPUS) >= 20
    messages = {path.read_text().splitlines()[0].split(": ", 2)[-1] for path in CORPUS}
    assert len(messages) == len(CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_mistake_is_reported_at_its_file_line_and_column(path: Path, catalog):
    text = path.read_text()
    header = text.splitlines()[0]
    assert header.startswith("# expect: ")
    position, message = header[len("# expect: ") :].split(": ", 1)
    name = f"metrics/{path.name}"
    _, issues = check_files({name: text}, catalog)
    printed = [str(issue) for issue in issues]
    assert f"{name}:{position}: error: {message}" in printed, "\n".join(printed)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_the_fast_schema_check_agrees_with_the_full_validator(path: Path):
    from pipeline.spec import located_yaml
    from pipeline.spec.load import _validator, conforms

    doc, _ = located_yaml.load(path.read_text(), path.name)
    if doc is None:
        pytest.skip("not YAML")
    assert conforms(doc.value) == (not list(_validator().iter_errors(doc.value)))
