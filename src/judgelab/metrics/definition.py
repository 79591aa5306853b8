"""What a valid metric definition is: the judged content, checked as a whole."""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from judgelab.errors import FieldError, InvalidInput
from judgelab.jsonutil import stable_hash

METRIC_TYPES = ("llm_judge", "custom_code")
REJECTED_TYPES = {
    "basic": "type 'basic' is not supported: use 'llm_judge' (the judge prompt goes in description) or 'custom_code'",
    "custom_prompt": "type 'custom_prompt' is not supported: use 'llm_judge' (the judge prompt goes in description)",
}
EVAL_TYPES = ("binary_qualitative", "binary_workflow_adherence", "enum", "numeric", "continuous_qualitative")
BINARY_EVAL_TYPES = ("binary_qualitative", "binary_workflow_adherence")
TRIGGERS = ("always", "automatic", "custom")
TRIGGER_TYPES = ("llm_judge", "custom_code")
MAX_PROMPT_CHARS = 100_000
MAX_CODE_CHARS = 200_000
_MODEL = re.compile(r"^[a-z0-9_\-]+/\S+$")


@dataclass
class MetricContent:
    """Everything that decides a metric's verdicts. Changing any of it makes a new version."""

    type: str = "llm_judge"
    description: str = ""
    eval_type: str = "binary_qualitative"
    enum_values: list[str] | None = None
    custom_code: str | None = None
    evaluation_trigger: str = "always"
    trigger_type: str | None = None
    evaluation_trigger_prompt: str | None = None
    evaluation_trigger_custom_code: str | None = None
    model: str | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def content_hash(self) -> str:
        return stable_hash(self.as_dict())


def validate(c: MetricContent) -> MetricContent:
    """Raise InvalidInput naming every problem at once; returns the content with harmless fields tidied."""
    errors: list[FieldError] = []

    def err(name: str, message: str) -> None:
        errors.append(FieldError(name, message))

    if c.type in REJECTED_TYPES:
        err("type", REJECTED_TYPES[c.type])
    elif c.type not in METRIC_TYPES:
        err("type", f"expected one of {', '.join(METRIC_TYPES)}, got {c.type!r}")
    if c.eval_type not in EVAL_TYPES:
        err("eval_type", f"expected one of {', '.join(EVAL_TYPES)}, got {c.eval_type!r}")

    if c.eval_type == "enum":
        if not c.enum_values:
            err("enum_values", "required when eval_type is 'enum': a list of the allowed values")
        elif not all(isinstance(v, str) and v.strip() for v in c.enum_values):
            err("enum_values", "every value must be a non-empty string")
        elif len(set(c.enum_values)) != len(c.enum_values):
            err("enum_values", "values must be unique")
        elif len(c.enum_values) > 100:
            err("enum_values", "at most 100 values")
    elif c.enum_values:
        err("enum_values", f"only allowed when eval_type is 'enum' (eval_type is {c.eval_type!r})")

    if c.type == "llm_judge" and not (c.description or "").strip():
        err("description", "required for an llm_judge metric: it is the judge prompt")
    if c.type == "custom_code":
        if not (c.custom_code or "").strip():
            err("custom_code", "required for a custom_code metric: Python that sets _result and _explanation")
        else:
            _check_python("custom_code", c.custom_code or "", errors)

    for name in ("description", "evaluation_trigger_prompt"):
        value = getattr(c, name)
        if value is not None and len(value) > MAX_PROMPT_CHARS:
            err(name, f"is {len(value)} characters; the limit is {MAX_PROMPT_CHARS}")
    for name in ("custom_code", "evaluation_trigger_custom_code"):
        value = getattr(c, name)
        if value is not None and len(value) > MAX_CODE_CHARS:
            err(name, f"is {len(value)} characters; the limit is {MAX_CODE_CHARS}")
    for name in MetricContent.names():
        value = getattr(c, name)
        if isinstance(value, str) and "\x00" in value:
            err(name, "contains a NUL character (\\u0000), which cannot be stored")

    if c.evaluation_trigger not in TRIGGERS:
        err("evaluation_trigger", f"expected one of {', '.join(TRIGGERS)}, got {c.evaluation_trigger!r}")
    elif c.evaluation_trigger == "custom":
        if c.trigger_type not in TRIGGER_TYPES:
            err("trigger_type", f"required when evaluation_trigger is 'custom': one of {', '.join(TRIGGER_TYPES)}")
        elif c.trigger_type == "llm_judge" and not (c.evaluation_trigger_prompt or "").strip():
            err("evaluation_trigger_prompt", "required when trigger_type is 'llm_judge'")
        elif c.trigger_type == "custom_code":
            if not (c.evaluation_trigger_custom_code or "").strip():
                err("evaluation_trigger_custom_code", "required when trigger_type is 'custom_code'")
            else:
                _check_python("evaluation_trigger_custom_code", c.evaluation_trigger_custom_code or "", errors)
    elif c.trigger_type is not None and c.trigger_type not in TRIGGER_TYPES:
        err("trigger_type", f"expected one of {', '.join(TRIGGER_TYPES)}, got {c.trigger_type!r}")

    if c.model is not None and (len(c.model) > 200 or not _MODEL.match(c.model)):
        err("model", f"expected 'provider/model' such as 'openai/gpt-4.1-mini', got {c.model!r}")

    if errors:
        raise InvalidInput(errors=errors)
    return c


def _check_python(name: str, source: str, errors: list[FieldError]) -> None:
    try:
        ast.parse(source, filename=name)
    except SyntaxError as exc:
        errors.append(FieldError(name, f"is not valid Python: {exc.msg} (line {exc.lineno})"))
    except ValueError as exc:  # e.g. NUL bytes
        errors.append(FieldError(name, f"is not valid Python: {exc}"))
