"""YAML parsed into plain Python values, with the file:line:col of every node kept aside.

PyYAML's C composer gives node marks quickly; we convert nodes ourselves so that
duplicate keys are reported instead of silently overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from pipeline.errors import Issue, Location, error

try:  # libyaml's composer is ~10x faster; fall back to pure Python where it is missing
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

Path = tuple[str | int, ...]


@dataclass
class LocatedDocument:
    """A YAML document's value and where each node (and each mapping key) sits."""

    file: str
    value: Any
    values: dict[Path, Location] = field(default_factory=dict)
    keys: dict[Path, Location] = field(default_factory=dict)

    def at(self, path: Path) -> Location:
        """Location of the value at path, or of its nearest located ancestor."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, Location(self.file, 1, 1))

    def key_at(self, path: Path) -> Location:
        return self.keys.get(path) or self.at(path)


def load(text: str, file: str) -> tuple[LocatedDocument | None, list[Issue]]:
    """Parse one YAML document; problems come back as issues, never as exceptions."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [error(f"invalid YAML: {problem}", loc)]
    except yaml.YAMLError as exc:  # pragma: no cover - non-marked errors are rare
        return None, [error(f"invalid YAML: {exc}", Location(file, 1, 1))]
    doc = LocatedDocument(file, None)
    issues: list[Issue] = []
    if node is not None:
        doc.value = _convert(node, (), doc, issues)
    return doc, issues


def _loc(doc: LocatedDocument, node: yaml.Node) -> Location:
    return Location(doc.file, node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, path: Path, doc: LocatedDocument, issues: list[Issue]) -> Any:
    doc.values[path] = _loc(doc, node)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            # keys stay text: YAML 1.1 would read `on:` or `yes:` as booleans
            key = str(key_node.value)
            if key in out:
                issues.append(error(f"duplicate key '{key}'", _loc(doc, key_node)))
                continue
            doc.keys[(*path, key)] = _loc(doc, key_node)
            out[key] = _convert(value_node, (*path, key), doc, issues)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), doc, issues) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    """A scalar resolved as SafeLoader would (int, float, bool, null, date, str)."""
    if not isinstance(node, yaml.ScalarNode):
        return str(node.value)
    constructor = yaml.SafeLoader.yaml_constructors.get(node.tag)
    if constructor is None or node.tag in _AS_TEXT:
        return node.value
    return constructor(_CONSTRUCTOR, node)


_CONSTRUCTOR = yaml.SafeLoader("")
# dates stay text (2025-11-01), checked where they are used
_AS_TEXT = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp")
