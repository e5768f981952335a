"""Bounds on what senders and authors write, in one place: every check against them is
iterative, so no input can exhaust the interpreter's stack while it is being measured.

Documented in docs/ingress.md (webhook bodies) and docs/workflows.md (definitions).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_JSON_DEPTH", "depth_exceeds", "may_nest_deeper"]

#: Deepest nesting of objects and arrays in a webhook body or an `inputs` schema: real payloads
#: stay under 20; a deeper document only costs stack in every library that walks it.
MAX_JSON_DEPTH = 64


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` (parsed JSON) nests objects and arrays more than `limit` levels deep;
    `{}` is one level, `{"a": []}` two, a scalar none."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def may_nest_deeper(raw: bytes, limit: int) -> bool:
    """False when the JSON text `raw` cannot nest more than `limit` levels: it opens no more
    than `limit` objects and arrays in all (brackets inside strings counted too). Saves the
    walk of `depth_exceeds` for nearly every real body. One counting scan, not two: the `[` are
    turned into `{` first by `replace`, which jumps from one to the next with `memchr` (a body
    has few), where each `count` steps through every byte (half of this check's instructions
    on the ingest path, callgrind)."""
    return raw.replace(b"[", b"{").count(b"{") > limit
