"""Labelled sets for `bench/align.py`, built from the tau-bench airline conversations (MIT, Sierra).

    .venv/bin/python bench/airline_labels.py      # writes bench/data/airline-confirmation.jsonl

Two labels per conversation, keyed by the `call_id` judgelab gives it on import
(`task-N-trial-M`):

- `policy`: tau-bench's own reward (1.0: the agent followed the airline policy and reached the
  goal state), a hard, holistic label;
- `confirmation`: a deterministic criterion computed from the tool calls — before every action
  that changes the booking database (book, change flights, baggage, passengers, cancel), the
  customer's last message must hold an explicit yes. `null` when the conversation changes
  nothing. The reason names the action and the customer's words, as a careful reviewer would.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "judgelab" / "demo" / "data" / "tau-bench-airline.json.gz"  # shipped, MIT (see its LICENSE)
OUT = ROOT / "bench" / "data" / "airline-confirmation.jsonl"
WRITES = ("book_reservation", "update_reservation_flights", "update_reservation_baggages",
          "update_reservation_passengers", "cancel_reservation")
YES = re.compile(r"\b(yes|yeah|yep|yup|confirm(?:ed)?|go ahead|proceed|please do|that's correct|correct)\b", re.I)
CRITERION = ("Before every action that changes the booking (booking, changing flights, baggage, passengers, or "
             "cancelling), the customer gave an explicit yes to proceed in their last message.")


def confirmation(traj: list[dict[str, Any]]) -> tuple[bool | None, str]:
    last_user = ""
    actions: list[tuple[str, str]] = []
    for message in traj:
        if message.get("role") == "user":
            last_user = message.get("content") or ""
        for call in message.get("tool_calls") or []:
            name = call["function"]["name"]
            if name in WRITES:
                actions.append((name, last_user))
    if not actions:
        return None, "The agent changed nothing in the booking system, so the rule does not apply."
    for name, said in actions:
        if not YES.search(said):
            return False, (f"Before {name} the customer's last message was {said[:120]!r}: no explicit yes, "
                           "so the agent acted without confirmation.")
    names = ", ".join(sorted({n for n, _ in actions}))
    return True, f"Each change ({names}) followed an explicit yes from the customer, e.g. {actions[0][1][:80]!r}."


def build(source: Path = SOURCE) -> list[dict[str, Any]]:
    rows = []
    raw = gzip.decompress(source.read_bytes()) if source.suffix == ".gz" else source.read_bytes()
    for record in json.loads(raw.decode("utf-8")):
        label, reason = confirmation(record["traj"])
        rows.append({"call_id": f"task-{record['task_id']}-trial-{record['trial']}", "policy": record["reward"] == 1.0,
                     "confirmation": label, "confirmation_reason": reason})
    return rows


def main() -> None:
    rows = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    counts = {k: sum(r["confirmation"] is k for r in rows) for k in (True, False, None)}
    print(f"wrote {len(rows)} rows to {OUT}: confirmation pass {counts[True]}, fail {counts[False]}, "
          f"n/a {counts[None]}; policy pass {sum(r['policy'] for r in rows)}", file=sys.stderr)


if __name__ == "__main__":
    main()
