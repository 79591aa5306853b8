"""Domain errors. Services raise these; every door (API, CLI, later MCP) turns them into clear messages."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class FieldError:
    field: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


class JudgelabError(Exception):
    """Base: a message for people, the fields it concerns, and the HTTP status it maps to."""

    status_code = 400

    def __init__(
        self, field_name: str = "", message: str = "", *, errors: list[FieldError] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.errors = errors if errors is not None else [FieldError(field_name, message)]
        self.extra = extra or {}  # more of the answer, beside detail and errors (e.g. an estimate)
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = len(self.errors) - 5
        return shown + (f"; and {more} more" if more > 0 else "")


class InvalidInput(JudgelabError):
    status_code = 400


class NotFound(JudgelabError):
    status_code = 404


class Conflict(JudgelabError):
    status_code = 409


class Forbidden(JudgelabError):
    """The key is valid but may not do this (an admin-only act)."""

    status_code = 403


_UNION_TAG = re.compile(r"^(str|int|float|bool|none|bytes|list\[.*\]|dict\[.*\]|[a-z-]+\[.*\]|function-\w+|constrained-\w+)$")


def field_path(loc: tuple[object, ...] | list[object]) -> str:
    """A pydantic error location as `a.b[0].c`, without the union-member tags pydantic adds."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _UNION_TAG.match(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def from_pydantic(errors: Sequence[Mapping[str, Any]], line: int | None = None) -> list[FieldError]:
    """One FieldError per field: union alternatives that all failed are merged into one message."""
    merged: dict[str, list[str]] = {}
    for e in errors:
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        msgs = merged.setdefault(field_path(tuple(e.get("loc", ()))), [])
        if msg not in msgs:
            msgs.append(msg)
    return [FieldError(f, " or ".join(m), line) for f, m in merged.items()]
