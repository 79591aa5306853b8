"""The one runtime of this process, for the workflow functions (DBOS calls them by name, so they
cannot be handed their dependencies)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from judgelab.config import Settings
from judgelab.db import Database
from judgelab.judges.registry import Judges


@dataclass
class State:
    db: Database
    settings: Settings
    executor_id: str
    make_judges: Callable[[], Judges]
    _judges: Judges | None = field(default=None, repr=False)

    def judges(self) -> Judges:
        # Built on first use, inside DBOS's event loop, where every async step runs.
        if self._judges is None:
            self._judges = self.make_judges()
        return self._judges

    def opened_judges(self) -> Judges | None:
        return self._judges


_current: State | None = None


def install(state: State | None) -> None:
    global _current
    _current = state


def current() -> State:
    if _current is None:
        raise RuntimeError("no job runtime in this process: start one with judgelab.jobs.runtime.start_runtime")
    return _current


def installed() -> State | None:
    return _current
