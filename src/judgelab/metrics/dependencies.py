"""Which metrics a custom_code metric reads (`data['other metric name']`), and in what order to run them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from judgelab.errors import InvalidInput

_REF = re.compile(r"""\bdata\s*(?:\[\s*|\.get\(\s*)(['"])(.+?)\1""")


def referenced_names(code: str | None) -> set[str]:
    """Names read from `data` by subscript or `.get` with a literal key."""
    return {m.group(2) for m in _REF.finditer(code or "")}


def check_no_cycle(name: str, code: str | None, others: dict[str, str | None]) -> None:
    """`others` maps every other live metric's name to its custom_code (None for judges).
    Raises InvalidInput naming the cycle, if saving `name` with `code` would close one."""
    graph = {n: referenced_names(c) & (set(others) | {name}) for n, c in others.items()}
    graph[name] = referenced_names(code) & (set(others) | {name})
    path: list[str] = []

    def visit(node: str, seen: set[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in seen:
            return None
        seen.add(node)
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, seen)
            if found:
                return found
        path.pop()
        return None

    cycle = visit(name, set())
    if cycle:
        raise InvalidInput("custom_code", "metrics would read each other in a cycle: " + " -> ".join(repr(n) for n in cycle))


def stages(names: Sequence[str], reads: dict[str, set[str]]) -> list[list[str]]:
    """Group metrics so each stage only reads results of earlier stages (names outside the set are
    read as already stored). Cycles are refused at save time; any left run together last."""
    pending = list(names)
    done: set[str] = set()
    out: list[list[str]] = []
    while pending:
        ready = [n for n in pending if not (reads.get(n, set()) & set(pending)) - {n}]
        if not ready:
            out.append(pending)
            break
        out.append(ready)
        done |= set(ready)
        pending = [n for n in pending if n not in done]
    return out
