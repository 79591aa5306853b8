from __future__ import annotations

import pytest

from judgelab.errors import InvalidInput
from judgelab.metrics.dependencies import check_no_cycle, referenced_names, stages


def test_referenced_names() -> None:
    code = "a = data['tone']\nb = data.get(\"asks to cancel\")\nc = data [ 'x' ]\nd = other['no']"
    assert referenced_names(code) == {"tone", "asks to cancel", "x"}
    assert referenced_names(None) == set()


def test_cycles_are_refused_naming_the_path() -> None:
    check_no_cycle("a", "x = data['b']", {"b": "y = data['c']", "c": None})
    with pytest.raises(InvalidInput, match="'a' -> 'b' -> 'a'"):
        check_no_cycle("a", "x = data['b']", {"b": "y = data['a']"})
    with pytest.raises(InvalidInput, match="cycle"):
        check_no_cycle("a", "x = data['a']", {})
    check_no_cycle("a", "x = data['transcript']", {"b": "y = data['a']"})  # not a metric name: no edge


def test_stages_put_readers_after_what_they_read() -> None:
    reads = {"judge": set(), "code1": {"judge"}, "code2": {"code1", "transcript"}, "lone": set()}
    assert stages(["code2", "code1", "judge", "lone"], reads) == [["judge", "lone"], ["code1"], ["code2"]]
