"""JSON helpers for the hot paths (hashing, storing, serving) and checks on user-supplied JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from judgelab.errors import FieldError

_OPTS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    """Compact JSON text; orjson because ingest and listing spend most of their time here."""
    return orjson.dumps(value, option=_OPTS).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


def check_json_value(field: str, value: Any, max_bytes: int, *, finite: bool = True) -> FieldError | None:
    """None when `value` can be stored on both databases and served as strict JSON.

    With `finite=False` the (slower) check for NaN / Infinity is skipped: orjson writes them as
    null, so they cannot break storage or responses, only be lost. Used for transcript turns,
    whose own numbers (times) are already checked one by one.
    """
    try:
        dumped = orjson.dumps(value, option=_OPTS).decode()
        # orjson writes NaN and Infinity as null, so only output holding a null needs the strict check.
        if finite and "null" in dumped:
            json.dumps(value, allow_nan=False)
    except ValueError:
        return FieldError(field, "numbers must be finite (NaN and Infinity are not JSON)")
    except (TypeError, RecursionError) as exc:  # orjson's errors are TypeErrors: huge ints, deep nesting
        return FieldError(field, f"cannot be stored as JSON ({exc})")
    if "\\u0000" in dumped:
        return FieldError(field, "contains a NUL character (\\u0000), which cannot be stored")
    size = len(dumped.encode())
    if size > max_bytes:
        return FieldError(field, f"is {size} bytes as JSON; the limit is {max_bytes}")
    return None


def stable_hash(value: Any) -> str:
    data = orjson.dumps(value, option=_OPTS | orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()
