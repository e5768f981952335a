"""A definition's YAML as the console shows it: read once into the document the API is sent and
the node tree that knows each value's line; an API error's location (`steps[2].agent`) found at
its line; the text as numbered lines with the errors under theirs; the diff of two versions.

The API validates; nothing here judges a definition. A location names a place in the JSON the
API was sent, which is the YAML's document, so the node tree holds it unless the API speaks of a
member that is missing (`steps[2].agent` is required): that error belongs to the nearest place
the text does have (`steps[2]`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from schemas.validation import SchemaError

__all__ = [
    "DiffRow",
    "Line",
    "Parsed",
    "YamlProblem",
    "annotate",
    "dump",
    "line_of",
    "locate",
    "parse",
    "side_by_side",
    "unified",
]

#: Nodes a document may expand to through its aliases; an alias bomb (a few lines that expand to
#: billions of values) is refused before anything is built from it.
MAX_NODES = 100_000

_INDEX = re.compile(r"\[(\d+)\]")
#: What YAML counts as a line break (its marks count lines so; `str.splitlines` knows more).
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class YamlProblem(ValueError):
    """Text that is not one YAML document: what is wrong and where (1-based line and column)."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def error(self) -> SchemaError:
        return SchemaError(f"line {self.line}, column {self.column}", self.message)


@dataclass(frozen=True, slots=True)
class Parsed:
    """One YAML document: its value and the node tree it was built from."""

    document: Any
    root: yaml.Node | None


def parse(text: str) -> Parsed:
    """The single YAML document in `text`; `YamlProblem` at its mark for a syntax error, more
    than one document, a tag the safe loader refuses, or too many nodes."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, found before parsing
        before = _BREAK.split(text[: exc.position])
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        where = (len(before), len(before[-1]) + 1)
        raise YamlProblem(f"the character U+{code:04X} {chr(code)!r} is not allowed in YAML", *where) from None
    try:
        root = loader.get_single_node()
        if root is not None:
            _count(root)
        document = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ": ".join(part for part in (exc.context, exc.problem) if part) or "not valid YAML"
        raise YamlProblem(what, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise YamlProblem("nested too deeply to read") from None
    finally:
        loader.dispose()
    return Parsed(document, root)


def _count(root: yaml.Node) -> None:
    seen, pending = 0, [root]
    while pending:
        node = pending.pop()
        seen += 1
        if seen > MAX_NODES:
            raise YamlProblem(f"the document expands to more than {MAX_NODES} values (through its aliases)")
        if isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            pending.extend(part for pair in node.value for part in pair)


def dump(document: Any) -> str:
    """A definition document as YAML: its own key order, block style, readable Unicode."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def _member(node: yaml.MappingNode, rest: str) -> tuple[yaml.Node, yaml.Node, str] | None:
    """The (key, value, rest after it) of the longest key of `node` that `rest` starts with,
    where the key ends the location or a `.` or `[` follows it (a key may hold dots)."""
    best: tuple[yaml.Node, yaml.Node, str] | None = None
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if not isinstance(name, str) or not rest.startswith(name):
            continue
        after = rest[len(name) :]
        if after and after[0] not in ".[":
            continue
        if best is None or len(name) > len(best[0].value):
            best = (key, value, after.removeprefix("."))
    return best


def _walk(root: yaml.Node, location: str) -> tuple[yaml.Node, bool]:
    """The node `location` names (for a member: its key, where `agent: x` or the `steps:` that
    heads a block is), or else the last one on its way; and whether it was found."""
    node, place, rest = root, root, location
    while rest:
        index = _INDEX.match(rest)
        if index is not None and isinstance(node, yaml.SequenceNode):
            at = int(index.group(1))
            if at >= len(node.value):
                return place, False
            node = place = node.value[at]
            rest = rest[index.end() :].removeprefix(".")
        elif index is not None and isinstance(node, yaml.MappingNode) and index.group(1) == "0":
            # One trigger may be written as a mapping; the API speaks of it as the first of a list.
            rest = rest[index.end() :].removeprefix(".")
        elif isinstance(node, yaml.MappingNode) and (found := _member(node, rest)) is not None:
            place, node, rest = found
        else:
            return place, False
    return place, True


def line_of(root: yaml.Node | None, location: str) -> int:
    """The 1-based line of the text that `location` (a `SchemaError`'s) is about."""
    if root is None or not location:
        return 1
    node, _ = _walk(root, location)
    return node.start_mark.line + 1


@dataclass(slots=True)
class Line:
    """A line of the text, with the errors located on it."""

    number: int
    text: str
    errors: list[SchemaError] = field(default_factory=list)


def locate(errors: Iterable[SchemaError], root: yaml.Node | None) -> list[tuple[SchemaError, int]]:
    """Each error with the line it is about."""
    return [(error, line_of(root, error.location)) for error in errors]


def annotate(text: str, located: Iterable[tuple[SchemaError, int]] = ()) -> list[Line]:
    """The numbered lines of `text`, each with the errors located on it (past the end: on the last)."""
    lines = [Line(n, t) for n, t in enumerate(_BREAK.split(text.removesuffix("\n")), start=1)]
    for error, number in located:
        lines[min(max(number, 1), len(lines)) - 1].errors.append(error)
    return lines


@dataclass(frozen=True, slots=True)
class DiffRow:
    """A row of a diff. Unified: `kind` is add, del, same or hunk, with one side's line.
    Side by side: both sides, `kind` add, del, change, same or hunk."""

    kind: str
    left: str | None = None
    right: str | None = None
    left_number: int | None = None
    right_number: int | None = None


Opcodes = list[tuple[str, int, int, int, int]]


def _hunks(old: str, new: str, context: int) -> Iterator[tuple[DiffRow, Opcodes, list[str], list[str]]]:
    a, b = old.splitlines(), new.splitlines()
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        header = f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@"
        yield DiffRow("hunk", header), group, a, b


def unified(old: str, new: str, context: int = 3) -> list[DiffRow]:
    """The changes from `old` to `new` as `difflib.unified_diff` shows them, each line with its
    number on its side."""
    rows: list[DiffRow] = []
    for header, group, a, b in _hunks(old, new, context):
        rows.append(header)
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows += [DiffRow("same", a[i], a[i], i + 1, j1 + i - i1 + 1) for i in range(i1, i2)]
                continue
            rows += [DiffRow("del", a[i], None, i + 1) for i in range(i1, i2)]
            rows += [DiffRow("add", None, b[j], None, j + 1) for j in range(j1, j2)]
    return rows


def side_by_side(old: str, new: str, context: int = 3) -> list[DiffRow]:
    """The same changes with `old` on the left and `new` on the right, a replaced line beside
    the line that replaces it."""
    rows: list[DiffRow] = []
    for header, group, a, b in _hunks(old, new, context):
        rows.append(header)
        for tag, i1, i2, j1, j2 in group:
            rows += _paired(tag, a, b, range(i1, i2), range(j1, j2))
    return rows


def _paired(tag: str, a: Sequence[str], b: Sequence[str], left: range, right: range) -> Iterator[DiffRow]:
    for offset in range(max(len(left), len(right))):
        i = left[offset] if offset < len(left) else None
        j = right[offset] if offset < len(right) else None
        kind = (
            "same" if tag == "equal" else "change" if i is not None and j is not None else "del" if j is None else "add"
        )
        yield DiffRow(
            kind,
            a[i] if i is not None else None,
            b[j] if j is not None else None,
            i + 1 if i is not None else None,
            j + 1 if j is not None else None,
        )
