"""Every README promise names the test that proves it, and every named test exists.

The README's last section, "Promises and their tests", is a table of
``| promise | section | test |``. Each test cell names one or more tests as
``tests/path/test_file.py::test_name`` (separated by ``<br>``), or says
``none yet`` for a promise no test proves so far.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
HEADING = "## Promises and their tests"
HEADER = ("promise", "section", "test")
NONE_YET = "none yet"
#: A test named in the table: a test file under tests/, then a function name.
REFERENCE = re.compile(r"^(tests/(?:[\w.-]+/)*test_\w+\.py)::([A-Za-z_]\w*)$")


@dataclass(frozen=True)
class Row:
    """One row of the promises table."""

    line: int
    promise: str
    section: str
    tests: tuple[str, ...]

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.section}: {self.promise!r})"


def _cells(line: str) -> list[str]:
    inner = line.strip()
    assert inner.startswith("|") and inner.endswith("|"), line
    return [cell.strip() for cell in inner[1:-1].split("|")]


def promise_rows(text: str) -> list[Row]:
    """Return the rows of the promises table in TEXT, the README's content."""
    lines = text.splitlines()
    assert HEADING in lines, f"README.md has no section {HEADING!r}"
    start = lines.index(HEADING) + 1
    rows: list[Row] = []
    header_seen = False
    for number, line in enumerate(lines[start:], start=start + 1):
        if line.startswith("## "):
            break
        if not line.lstrip().startswith("|"):
            if header_seen and rows and line.strip():
                break
            continue
        cells = _cells(line)
        if not header_seen:
            assert tuple(cells) == HEADER, f"README.md:{number}: table header {cells}"
            header_seen = True
            continue
        if all(set(cell) <= set("-: ") for cell in cells):
            continue  # the separator line
        assert len(cells) == len(HEADER), f"README.md:{number}: {len(cells)} cells, not 3"
        promise, section, tests = cells
        names = tuple(part.strip() for part in tests.split("<br>") if part.strip())
        rows.append(Row(number, promise, section, names))
    return rows


@cache
def defined_functions(path: Path) -> frozenset[str]:
    """Return the functions defined in PATH at module level or in a class body."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    scopes: list[ast.AST] = [tree]
    while scopes:
        scope = scopes.pop()
        for node in getattr(scope, "body", []):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.add(node.name)
            elif isinstance(node, ast.ClassDef):
                scopes.append(node)
    return frozenset(found)


def problems_of(row: Row, repo: Path = REPO) -> list[str]:
    """Return what is wrong with ROW's test cell: each a sentence naming the row."""
    if not row.tests:
        return [f"{row}: no test named, and not '{NONE_YET}'"]
    if row.tests == (NONE_YET,):
        return []
    found = []
    for name in row.tests:
        match = REFERENCE.match(name)
        if match is None:
            found.append(f"{row}: {name!r} is not tests/...py::test_name nor '{NONE_YET}'")
            continue
        file, function = match.groups()
        path = repo / file
        if not path.is_file():
            found.append(f"{row}: {file} does not exist")
        elif function not in defined_functions(path):
            found.append(f"{row}: {file} defines no function {function}")
    return found


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return promise_rows(README.read_text())


def test_the_promises_table_is_not_empty(rows: list[Row]) -> None:
    assert rows, "the README's promises table has no row"
    assert [row for row in rows if not (row.promise and row.section)] == []


def test_every_promise_names_a_test_that_exists_or_says_none_yet(rows: list[Row]) -> None:
    problems = [problem for row in rows for problem in problems_of(row)]
    assert problems == [], "\n".join(problems)


def test_every_section_named_is_a_heading_of_the_readme(rows: list[Row]) -> None:
    text = README.read_text()
    headings = {line[3:].strip() for line in text.splitlines() if line.startswith("## ")}
    unknown = [str(row) for row in rows if row.section not in headings]
    assert unknown == [], "\n".join(unknown)


def test_a_misspelled_or_missing_test_is_reported(tmp_path: Path) -> None:
    # The check must be able to fail: a blind check proves nothing.
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_some.py").write_text(
        "def test_present():\n    pass\n\n\nclass TestGroup:\n    def test_in_class(self):\n"
        "        pass\n"
    )
    text = "\n".join(
        [
            "# x",
            "",
            HEADING,
            "",
            "| promise | section | test |",
            "|---|---|---|",
            "| a | x | tests/test_some.py::test_present<br>tests/test_some.py::test_in_class |",
            "| b | x | tests/test_some.py::test_presnet |",
            "| c | x | tests/test_gone.py::test_present |",
            "| d | x | none yet |",
            "| e | x |  |",
            "| f | x | test_present |",
        ]
    )
    rows = promise_rows(text)
    assert [row.promise for row in rows] == ["a", "b", "c", "d", "e", "f"]
    problems = {row.promise: problems_of(row, tmp_path) for row in rows}
    assert problems["a"] == [] and problems["d"] == []
    assert "defines no function test_presnet" in problems["b"][0]
    assert "README.md:8" in problems["b"][0] and "'b'" in problems["b"][0]
    assert "tests/test_gone.py does not exist" in problems["c"][0]
    assert "no test named" in problems["e"][0]
    assert "is not tests/...py::test_name" in problems["f"][0]
