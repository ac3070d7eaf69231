"""Hostile metric files at the load stage: one located message each, never a traceback or a
hang (the one-file cases with a text header are in tests/fixtures/broken_metrics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.catalog import read_catalog
from pipeline.compiler import check_files, read_metric_files
from pipeline.project import Project
from pipeline.spec.load import MAX_SCHEMA_ERRORS
from pipeline.spec.located_yaml import MAX_BYTES

FIXTURES = Path(__file__).parents[2] / "fixtures"

REVENUE = """\
kpis:
  - name: revenue
    category: financial
    model: orders
    time: order_date
    sum: amount
"""


@pytest.fixture(scope="module")
def catalog():
    return read_catalog(FIXTURES / "catalog" / "models", FIXTURES.parents[1])


def printed(files, catalog) -> list[str]:
    _, issues = check_files(files, catalog)
    return [str(issue) for issue in issues]


@pytest.mark.parametrize("text", ["", b"", "\n   \n\n", "# nothing yet\n\n# still nothing\n"])
def test_an_empty_file_is_an_error(text, catalog):
    assert printed({"metrics/empty.yml": text}, catalog) == [
        "metrics/empty.yml:1:1: error: empty metric file: it declares nothing (add kpis:, or delete it)"
    ]


def test_an_empty_file_does_not_hide_the_errors_of_other_files(catalog):
    aov = "  - name: aov\n    category: financial\n    ratio: {numerator: revenu, denominator: revenue}\n"
    lines = printed({"metrics/a.yml": REVENUE + aov, "metrics/empty.yml": ""}, catalog)
    assert any("numerator 'revenu' is not a KPI (did you mean 'revenue'?)" in line for line in lines)


def test_binary_data_is_not_text(catalog):
    data = b"kpis:\n  - \x00\x00\xff\xfe\x89PNG\x00"
    assert printed({"metrics/b.yml": data}, catalog) == [
        "metrics/b.yml:2:7: error: not a text file: binary data"
    ]


def test_arbitrary_bytes_get_one_message(catalog):
    lines = printed({"metrics/b.yml": bytes(range(256)) * 8}, catalog)
    assert len(lines) == 1
    assert lines[0].startswith("metrics/b.yml:") and lines[0].endswith(
        "error: not a text file: binary data"
    )


def test_a_latin1_file_is_reported_at_its_first_bad_byte(catalog):
    text = REVENUE.replace("    sum: amount\n", "    description: Café sales\n    sum: amount\n")
    lines = printed({"metrics/latin1.yml": text.encode("latin-1")}, catalog)
    assert lines == [
        "metrics/latin1.yml:6:21: error: not UTF-8 text: byte 0xe9 cannot be decoded; save the file as UTF-8"
    ]


def test_the_column_of_a_bad_byte_counts_characters(catalog):
    data = "kpis: []\n# Café, ".encode() + b"caf\xe9\n"
    assert printed({"metrics/mixed.yml": data}, catalog) == [
        "metrics/mixed.yml:2:12: error: not UTF-8 text: byte 0xe9 cannot be decoded; save the file as UTF-8"
    ]


def test_a_file_larger_than_the_limit_is_refused(catalog):
    data = b"# padding\n" * (MAX_BYTES // 10 + 1)
    assert printed({"metrics/big.yml": data}, catalog) == [
        "metrics/big.yml:1:1: error: file is larger than 1 MiB; split it"
    ]


def test_a_large_file_is_read_no_further_than_the_limit(tmp_path: Path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "big.yml").write_bytes(b"#" * (3 * MAX_BYTES))
    assert len(read_metric_files(Project(tmp_path))["metrics/big.yml"]) == MAX_BYTES + 1


def billion_laughs(levels: int) -> str:
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_stops_at_the_alias_limit(catalog):
    # 10^12 values if expanded: refused after 10,000 repeated ones
    assert printed({"metrics/bomb.yml": billion_laughs(12)}, catalog) == [
        "metrics/bomb.yml:1:5: error: YAML aliases repeat more than 10,000 values; write them out"
    ]


def test_a_chain_of_aliases_deeper_than_the_limit_is_refused(catalog):
    lines = ["a0: &a0 [x]", *(f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 300))]
    (line,) = printed({"metrics/deep.yml": "\n".join(lines)}, catalog)
    assert line.endswith("error: values nested more than 100 deep (an alias inside its own anchor?)")


def test_deeply_nested_text_is_refused(catalog):
    (line,) = printed({"metrics/deep.yml": "kpis: " + "[" * 900 + "]" * 900}, catalog)
    assert line.startswith("metrics/deep.yml:1:")
    assert line.endswith("error: values nested more than 100 deep (an alias inside its own anchor?)")


def test_a_few_aliases_still_load(catalog):
    text = (
        REVENUE.replace("    sum: amount\n", "    sum: amount\n    dimensions: &dims [channel]\n")
        + "  - name: orders_count\n    category: financial\n    model: orders\n"
        "    time: order_date\n    count: '*'\n    dimensions: *dims\n"
    )
    spec, issues = check_files({"metrics/a.yml": text}, catalog)
    assert not issues, [str(i) for i in issues]
    assert [d.column for d in spec.kpis[1].dimensions] == ["channel"]


BROKEN = (
    "relationships:\n  - {from: orders, to: customers, on: customer_id}\n"
    + REVENUE
    + "  - name: orders_count\n    category: [\n"
)

USES = """\
kpis:
  - name: aov
    category: financial
    ratio: {numerator: revenue, denominator: orders_count}
  - name: double_revenue
    category: financial
    derived: 2 * revenue
  - name: revenue_to_date
    category: financial
    cumulative: revenue
    grains: [day]
  - name: revenue_by_segment
    category: financial
    model: orders
    time: order_date
    sum: amount
    dimensions: [customers.segment]
  - name: typo
    category: financial
    model: order
    time: order_date
    sum: amount
targets:
  - {kpi: revenue, per: month, value: 100}
"""


def test_a_syntax_error_comes_first_and_what_it_may_define_is_not_unknown(catalog):
    lines = printed({"metrics/a_uses.yml": USES, "metrics/z_broken.yml": BROKEN}, catalog)
    assert lines[0] == "metrics/z_broken.yml:11:1: error: invalid YAML: did not find expected node content"
    # errors of their own in other files are still reported, after it
    assert lines[1:] == [
        "metrics/a_uses.yml:20:12: error: kpi 'typo': unknown model 'order' (did you mean 'orders'?)"
    ]


def test_once_it_parses_unknown_names_are_reported_again(catalog):
    lines = printed({"metrics/a_uses.yml": USES}, catalog)
    assert any("numerator 'revenue' is not a KPI" in line for line in lines), lines
    assert any("no relationship from orders to 'customers'" in line for line in lines), lines


def test_while_a_file_does_not_parse_hygiene_warnings_wait(catalog):
    files = {"metrics/a.yml": REVENUE, "metrics/targets.yml": "targets: [\n"}
    _, issues = check_files(files, catalog, with_hygiene=True)
    assert [str(i) for i in issues] == [
        "metrics/targets.yml:2:1: error: invalid YAML: did not find expected node content"
    ]
    _, issues = check_files({"metrics/a.yml": REVENUE}, catalog, with_hygiene=True)
    assert any("no target" in str(i) for i in issues)


def test_a_folder_named_like_a_metric_file_is_not_read(tmp_path: Path):
    (tmp_path / "metrics" / "old.yml").mkdir(parents=True)
    (tmp_path / "metrics" / "a.yml").write_text(REVENUE)
    assert list(read_metric_files(Project(tmp_path))) == ["metrics/a.yml"]


def test_a_number_too_long_to_convert_is_an_error(catalog):
    (line,) = printed({"metrics/n.yml": f"config:\n  strategic_limit: {'9' * 5000}\n"}, catalog)
    assert line == f"metrics/n.yml:2:20: error: invalid YAML: '{'9' * 40}…' is not a valid int"


def test_a_file_with_very_many_errors_lists_the_first_few(catalog):
    lines = printed({"metrics/many.yml": "kpis: [" + "1, " * 10_000 + "]\n"}, catalog)
    assert len(lines) == MAX_SCHEMA_ERRORS + 1
    assert lines[0] == "metrics/many.yml:1:8: error: kpi must be a mapping, not 1"
    assert lines[-1].endswith("error: more errors follow; the first 50 are listed")


def test_a_utf16_file_is_told_to_be_saved_as_utf8(catalog):
    data = REVENUE.encode("utf-16")  # with its byte order mark, as Windows editors write it
    assert printed({"metrics/w.yml": data}, catalog) == [
        "metrics/w.yml:1:1: error: UTF-16 text: save the file as UTF-8"
    ]
