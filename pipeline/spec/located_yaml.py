"""YAML parsed into plain Python values, with the file:line:col of every node kept aside.

PyYAML's C composer gives node marks quickly; we convert nodes ourselves so that
duplicate keys are reported instead of silently overwritten, and so that a hostile file
(binary, too large, aliases expanding without end) is refused with a message.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipeline.errors import Issue, Location, error

try:  # libyaml's composer is ~10x faster; fall back to pure Python where it is missing
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

Path = tuple[str | int, ...]

MAX_BYTES = 1024 * 1024  # a larger metric file is refused unread
MAX_ALIAS_VALUES = 10_000  # values that aliases may repeat, in all, per file
MAX_DEPTH = 100  # mappings and lists nested deeper are refused


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


class _Refused(Exception):
    def __init__(self, issue: Issue):
        self.issue = issue


def load(source: str | bytes, file: str) -> tuple[LocatedDocument | None, list[Issue]]:
    """Parse one YAML document (bytes must be UTF-8); problems come back as issues, never as
    exceptions. The document is None when the file could not be read as YAML at all."""
    try:
        text = _text(source, file)
        node = yaml.compose(text, Loader=_Loader)
        doc = LocatedDocument(file, None)
        issues: list[Issue] = []
        if node is not None:
            doc.value = _Converter(doc, issues).convert(node, ())
    except _Refused as refused:
        return None, [refused.issue]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [error(f"invalid YAML: {problem}", loc)]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        loc = _position(file, text[: exc.position])
        problem = f"control character U+{exc.character:04X} is not allowed in YAML"
        return None, [error(f"not a text file: {problem}", loc)]
    return doc, issues


def _text(source: str | bytes, file: str) -> str:
    if len(source) > MAX_BYTES:
        raise _Refused(
            error(f"file is larger than {MAX_BYTES // 2**20} MiB; split it", Location(file, 1, 1))
        )
    if isinstance(source, str):
        return source
    try:
        return source.decode("utf-8")
    except UnicodeDecodeError as exc:
        loc = _position(file, source[: exc.start].decode("utf-8", errors="replace"))
        if source.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise _Refused(error("UTF-16 text: save the file as UTF-8", loc)) from None
        if b"\0" in source:
            raise _Refused(error("not a text file: binary data", loc)) from None
        byte = source[exc.start]
        raise _Refused(
            error(
                f"not UTF-8 text: byte 0x{byte:02x} cannot be decoded; save the file as UTF-8", loc
            )
        ) from None


def _position(file: str, before: str) -> Location:
    """The location just after `before`, the text preceding it."""
    line = before.count("\n") + 1
    return Location(file, line, len(before) - (before.rfind("\n") + 1) + 1)


def _loc(doc: LocatedDocument, node: yaml.Node) -> Location:
    return Location(doc.file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter:
    """Nodes → values. An alias is the same node object met again: each repeated value
    counts against MAX_ALIAS_VALUES (nested aliases would otherwise grow exponentially)."""

    def __init__(self, doc: LocatedDocument, issues: list[Issue]):
        self.doc, self.issues = doc, issues
        self.seen: set[int] = set()
        self.repeated = 0

    def convert(self, node: yaml.Node, path: Path) -> Any:
        doc = self.doc
        if id(node) in self.seen:
            self.repeated += 1
            if self.repeated > MAX_ALIAS_VALUES:
                raise _Refused(
                    error(
                        f"YAML aliases repeat more than {MAX_ALIAS_VALUES:,} values; write them out",
                        doc.key_at(path),
                    )
                )
        self.seen.add(id(node))
        if len(path) > MAX_DEPTH:
            raise _Refused(
                error(
                    f"values nested more than {MAX_DEPTH} deep (an alias inside its own anchor?)",
                    _loc(doc, node),
                )
            )
        doc.values[path] = _loc(doc, node)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.issues.append(error("a key must be plain text", _loc(doc, key_node)))
                    continue
                # keys stay text: YAML 1.1 would read `on:` or `yes:` as booleans
                key = str(key_node.value)
                if key in out:
                    self.issues.append(error(f"duplicate key '{key}'", _loc(doc, key_node)))
                    continue
                doc.keys[(*path, key)] = _loc(doc, key_node)
                out[key] = self.convert(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        try:
            return _scalar(node)
        except (ValueError, KeyError, TypeError, OverflowError):  # `!!int abc`, 5,000 digits
            text = node.value if len(node.value) <= 40 else f"{node.value[:40]}…"
            kind = node.tag.rpartition(":")[2]
            raise _Refused(
                error(f"invalid YAML: '{text}' is not a valid {kind}", _loc(doc, node))
            ) from None


def _scalar(node: yaml.Node) -> Any:
    """A scalar resolved as SafeLoader would (int, float, bool, null, date, str)."""
    constructor = yaml.SafeLoader.yaml_constructors.get(node.tag)
    if constructor is None or node.tag in _AS_TEXT:
        return node.value
    return constructor(_CONSTRUCTOR, node)


_CONSTRUCTOR = yaml.SafeLoader("")
# dates stay text (2025-11-01), checked where they are used
_AS_TEXT = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp")
