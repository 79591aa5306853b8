"""How the tests' scripted models recognise and answer the labs rewriter."""

from __future__ import annotations

import json
from typing import Any

from judgelab.labs.candidates import REWRITER_SYSTEM


def is_rewriter(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"] == REWRITER_SYSTEM


def current(body: dict[str, Any]) -> str:
    """The criterion the rewriter was asked to improve."""
    return body["messages"][1]["content"].split("Current criterion:\n", 1)[1].split("\n\nThe judge's mistakes:", 1)[0]


def mistakes(body: dict[str, Any]) -> str:
    """The mistakes part of the rewriter's prompt (without the conversations it got right)."""
    text = body["messages"][1]["content"].split("The judge's mistakes:", 1)[1]
    return text.split("\nConversations the judge got right", 1)[0]


def answer(*rules: str) -> str:
    return json.dumps({"hypotheses": [{"rule": r, "replaces": "", "rationale": "from the reasons"} for r in rules]})


def criterion_of(body: dict[str, Any]) -> str:
    """What a judge request grades against: what follows the call's data, up to the answer format."""
    return body["messages"][-1]["content"].split("\n\nCriterion:\n", 1)[1].split("\n\nAnswer format:\n", 1)[0]


def question_of(body: dict[str, Any]) -> str:
    """Everything after the call's fence: the criterion (or a trigger's question) and the answer format."""
    return body["messages"][-1]["content"].rsplit("</T", 1)[1]
