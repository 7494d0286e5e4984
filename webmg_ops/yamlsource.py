"""YAML documents that remember where each value was written.

Validation errors must name the file, the line and the field; this module
parses a YAML text once into plain data and keeps the node tree so that a
field path (as pydantic reports it) can be turned back into a line number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FieldPath = Sequence[str | int]


@dataclass(frozen=True)
class SourceProblem:
    """One problem found in a source file, located as precisely as possible."""

    file: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class YamlSourceError(Exception):
    """The text is not valid YAML, or has duplicate keys; carries the problems."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


def format_field_path(path: FieldPath) -> str:
    """Given a field path such as ``("windows", 0, "start")``, return ``windows[0].start``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True)
class YamlSource:
    """A parsed YAML file: its data and its node tree, for line lookups."""

    file: Path
    data: Any
    root: yaml.Node | None

    def line_of(self, path: FieldPath) -> int:
        """Given a field path, return the 1-based line where it is written.

        A path that goes further than the document (a missing field) gives
        the line of the deepest part that exists.
        """
        node = self.root
        if node is None:
            return 1
        line = node.start_mark.line + 1
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            key_node, node = child
            line = (key_node or node).start_mark.line + 1
        return line

    def problem(self, path: FieldPath, message: str) -> SourceProblem:
        """Given a field path and a message, return a located :class:`SourceProblem`."""
        return SourceProblem(self.file, self.line_of(path), format_field_path(path), message)


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                return key_node, value_node
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return None, node.value[part]
    return None


def _duplicate_keys(
    node: yaml.Node | None, path: list[str | int]
) -> list[tuple[list[str | int], yaml.Node]]:
    found: list[tuple[list[str | int], yaml.Node]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                found.append(([*path, key], key_node))
            seen.add(key)
            found.extend(_duplicate_keys(value_node, [*path, key]))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, [*path, index]))
    return found


def parse_yaml_source(text: str, file: Path) -> YamlSource:
    """Given YAML text and the file it came from, return a :class:`YamlSource`.

    Raise :class:`YamlSourceError` if the text is not YAML (with the line of
    the syntax error) or repeats a key in one mapping.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        reason = error.problem or error.context or "not valid YAML"
        raise YamlSourceError(
            [SourceProblem(file, line, "", f"malformed YAML: {reason}")]
        ) from error
    except yaml.YAMLError as error:
        raise YamlSourceError([SourceProblem(file, 1, "", f"malformed YAML: {error}")]) from error
    duplicates = _duplicate_keys(root, [])
    if duplicates:
        raise YamlSourceError(
            [
                SourceProblem(
                    file, node.start_mark.line + 1, format_field_path(path), "duplicate key"
                )
                for path, node in duplicates
            ]
        )
    return YamlSource(file=file, data=data, root=root)
