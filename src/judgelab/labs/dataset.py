"""The labelled set a labs run learns from, its contradictions, and its split.

Items come from current feedback with a known label (`effective_label`) and from test-set items
with an expected value. Everything here is pure or reads the database once, so the workflow can
replay it deterministically.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from judgelab.calls.queries import get_call_for_judging
from judgelab.db.models import Feedback, Metric, MetricResult, MetricVersion, TestSet, TestSetItem
from judgelab.feedback.labels import effective_label, majority

SMALL = 12  # below this many labels, one split has almost no power: say so


def fingerprint(call: dict[str, Any]) -> str:
    """Near-identical conversations share one: case and spacing do not count."""
    text = " ".join(t.get("content") or "" for t in call.get("transcript_json") or []) or call.get("transcript") or ""
    return text_fingerprint(text)


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(" ".join((text or "").lower().split()).encode()).hexdigest()[:32]


def group_key(item: dict[str, Any]) -> str:
    """The conversation group a labelled item belongs to (its near-duplicates share it)."""
    return item.get("group") or item["fingerprint"]


def group_of(call: dict[str, Any]) -> str:
    """Near-duplicates share a group and so one side of every split: the same task or customer (in
    metadata: tau-bench's 4 trials of one task are one group), else the same normalised text."""
    meta = call.get("metadata") or {}
    for key in ("task_id", "customer_id", "customer", "caller_id", "phone_number"):
        if meta.get(key) not in (None, ""):
            return f"{key}:{meta[key]}"
    return "text:" + fingerprint(call)


SHINGLE = 5  # words per shingle
NEAR = 0.9  # Jaccard overlap of shingles above which two transcripts are one conversation
MIN_WORDS = 30  # shorter transcripts differ by a word or two on purpose: only exact copies join


def _shingles(call: dict[str, Any]) -> set[str]:
    text = " ".join(t.get("content") or "" for t in call.get("transcript_json") or []) or call.get("transcript") or ""
    words = text.lower().split()
    if len(words) < MIN_WORDS:
        return set()
    return {" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def join_near_duplicates(items: list[dict[str, Any]]) -> None:
    """Transcripts that share most of their 5-word shingles (a retried call, a re-sent log with a
    new id) join one group, so they cannot straddle a split."""
    sets = [_shingles(i["call"]) for i in items]
    parent = list(range(len(items)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if root(a) != root(b) and sets[a] and sets[b]:
                overlap = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
                if overlap >= NEAR:
                    parent[root(b)] = root(a)
    for k, item in enumerate(items):
        item["group"] = items[root(k)]["group"]


def tolerance_for(metric: Metric) -> float:
    """How far a number may be from its label and still agree: the metric's own, else exact for
    numeric metrics and +-5 % of the 0-1 range for continuous ones."""
    if metric.label_tolerance is not None:
        return float(metric.label_tolerance)
    return 0.05 if metric.current.eval_type == "continuous_qualitative" else 0.0


def load_items(session: Session, project_id: int, metric: Metric, test_set_ids: list[int] | None, *,
               version: MetricVersion | None = None, model: str | None = None) -> list[dict[str, Any]]:
    """The labelled items. Each carries what production would give the judge: the call, and for a
    metric whose code or trigger reads other metrics, their results (`others`). With `model`, each
    also carries the stored result of this very version and model on it (`stored`, matched by the
    evaluation cache key), so a labs baseline need not pay for it again."""
    eval_type = metric.current.eval_type
    version = version or metric.current
    reads = "custom_code" in (version.type, version.trigger_type)
    items: list[dict[str, Any]] = []
    votes = session.scalars(select(Feedback).where(Feedback.metric_id == metric.id, Feedback.is_current.is_(True))
                            .order_by(Feedback.id)).all()
    by_call: dict[int, list[tuple[Feedback, Any]]] = defaultdict(list)
    for f in votes:
        known, label = effective_label(f.vote, f.has_expected_value, f.expected_value, f.result_value, eval_type)
        if known:
            by_call[f.call_log_id].append((f, label))
    for call_id, labelled in by_call.items():
        # Several reviewers: the majority's label, with the majority's reasons (an overruled reason
        # would teach the opposite rule); a tie keeps every vote, and the run asks which is right.
        decided, label = majority([lab for _f, lab in labelled])
        keep = [(f, lab) for f, lab in labelled if not decided or repr(lab) == repr(label)]
        if decided and len(keep) > 1:
            first = keep[0][0]
            keep = [(first, label)]
            reason = " / ".join(dict.fromkeys(f.feedback for f, _lab in labelled
                                              if f.feedback and repr(_lab) == repr(label)))
        else:
            reason = None
        call, call_hash = get_call_for_judging(session, project_id, call_id, with_results=reads)
        others = ({r["name"]: r["value"] for r in call["evaluation"]["metrics"]
                   if r["error"] is None and r["metric_id"] != metric.id} if reads else None)
        stored = _stored(session, project_id, version, model, call_hash, others) if model else None
        for f, lab in keep:
            items.append({"key": f"feedback:{f.id}", "call": _slim(call), "label": lab, "others": others,
                          "stored": stored,
                          "reason": reason if reason is not None else (f.feedback or ""), "judged": f.result_value,
                          "reviewer": f.reviewer if reason is None else f"{len(labelled)} reviewers",
                          "source": f.source})
    stmt = (select(TestSetItem, TestSet).join(TestSet, TestSet.id == TestSetItem.test_set_id)
            .where(TestSetItem.metric_id == metric.id, TestSet.project_id == project_id, TestSetItem.has_expected_value))
    if test_set_ids is not None:
        stmt = stmt.where(TestSet.id.in_(test_set_ids))
    for ts_item, ts in session.execute(stmt.order_by(TestSetItem.id)).all():
        call = {"id": None, "transcript": ts.transcript, "transcript_json": ts.transcript_json,
                "agent_description": ts.agent_description or "", "metadata": ts.meta or {},
                "dynamic_variables": ts.dynamic_variables or {}}
        items.append({"key": f"test_set_item:{ts_item.id}", "call": call, "label": ts_item.expected_value,
                      "reason": ts_item.feedback or "", "judged": None, "reviewer": f"test set {ts.id}",
                      "source": "test_set"})
    for entry in items:
        entry["group"] = group_of(entry["call"])
    join_near_duplicates(items)
    tolerance = tolerance_for(metric)
    # The ledger: labels an applied version was built from never enter a later held-out set of this
    # metric (they still train), or the version would be scored on what made it.
    trained = {key for v in metric.versions for key in (v.trained_on or [])}
    for entry in items:
        entry["trained"] = entry["key"] in trained
        entry["fingerprint"] = fingerprint(entry["call"])
        entry["tolerance"] = tolerance
    return items


def usable_labels(session: Session, metric: Metric) -> int:
    """How many labelled items a labs run could use (what `ready_for_labs` counts)."""
    return len(load_items(session, metric.project_id, metric, None))


def _stored(session: Session, project_id: int, version: MetricVersion, model: str | None, call_hash: str,
            others: dict[str, Any] | None) -> dict[str, Any] | None:
    from judgelab.evaluation.engine import result_key

    key = result_key(version.content_hash, version.type, version.model or model, call_hash, others)
    row = session.execute(select(MetricResult.value, MetricResult.explanation).where(
        MetricResult.cache_key == key, MetricResult.project_id == project_id, MetricResult.error.is_(None))
        .order_by(MetricResult.id.desc()).limit(1)).first()
    return None if row is None else {"value": row.value, "explanation": (row.explanation or "")[:600]}


def _slim(call: dict[str, Any]) -> dict[str, Any]:
    # What evaluate() reads of a call (a code trigger gets call_ended_reason and the recording too).
    keep = ("id", "call_id", "timestamp", "transcript", "transcript_json", "agent_description", "metadata", "dynamic_variables",
            "call_ended_reason", "voice_recording_url", "duration")
    return {k: call.get(k) for k in keep}


def contradictions(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Groups of items on the same conversation whose labels disagree."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[item["fingerprint"]].append(item)
    return [g for g in groups.values() if len({repr(i["label"]) for i in g}) > 1]


def question_for(conflicts: list[list[dict[str, Any]]]) -> dict[str, Any]:
    first = conflicts[0]
    labels = sorted({repr(i["label"]) for i in first})
    return {
        # Stable for the conflict it asks about, so answers keyed by question id find it.
        "id": "q-" + hashlib.sha256("|".join(sorted(i["key"] for i in first)).encode()).hexdigest()[:12],
        "text": (f"{len(first)} labels on the same conversation disagree ({', '.join(labels)}). Which is right? "
                 "Answer with the right value, or skip to leave these items out of the run."),
        "conflicts": len(conflicts),
        "items": [{"key": i["key"], "label": i["label"], "reason": i["reason"], "reviewer": i["reviewer"],
                   "call_log_id": i["call"].get("id")} for i in first],
    }


def apply_answer(items: list[dict[str, Any]], conflict: list[dict[str, Any]], answer: dict[str, Any]) -> list[dict[str, Any]]:
    """`{"action": "skip"}` drops the conflicting items; `{"answer": value}` (already normalised to
    the metric's eval type) becomes their label."""
    keys = {i["key"] for i in conflict}
    if answer.get("action") == "skip":
        return [i for i in items if i["key"] not in keys]
    right = answer.get("answer")
    # The overruled items go, reasons and all: a reason argued for the other label, and kept under
    # the answer's label it would make a generator write the opposite rule.
    agreeing = [i for i in conflict if repr(i["label"]) == repr(right)]
    if not agreeing:  # the answer is a third value: one item carries it, without the others' reasons
        agreeing = [{**conflict[0], "label": right, "reason": ""}]
    kept = {i["key"]: i for i in agreeing}
    return [kept[i["key"]] if i["key"] in kept else i for i in items if i["key"] not in keys or i["key"] in kept]


def split(items: list[dict[str, Any]], seed: int, held_out_share: float = 1 / 3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stratified by label and deterministic for a seed; near-duplicates (one group) stay on one
    side, so the held-out part never shares a conversation with what the optimiser saw.

    The held-out count is set for the whole set (a third of the groups, at least one) and shared
    out over the labels by largest remainder, so a label seen once can be held out too (with 13
    distinct numeric labels, per-label rounding held out none)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ledger = {group_key(i) for i in items if i.get("trained")}
    always_train = [i for i in items if group_key(i) in ledger]
    for item in items:
        if group_key(item) not in ledger:
            groups[group_key(item)].append(item)
    by_label: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for g in sorted(groups):
        by_label[repr(groups[g][0]["label"])].append(groups[g])
    rng = random.Random(seed)
    total = len(groups)
    cut_total = max(1, round(total * held_out_share)) if total >= 2 else 0
    labels = sorted(by_label)
    exact = {label: cut_total * len(by_label[label]) / total for label in labels}
    cuts = {label: int(exact[label]) for label in labels}
    # The slots left after the whole parts go to labels drawn with chance proportional to their
    # remainders, so a label seen once is held out about a third of the time, never by rule never.
    left = cut_total - sum(cuts.values())
    weights = {label: exact[label] - cuts[label] for label in labels}
    for _ in range(left):
        open_labels = [la for la in labels if weights[la] > 0]
        pick = rng.choices(open_labels, weights=[weights[la] for la in open_labels])[0]
        cuts[pick] += 1
        weights[pick] = 0.0
    optimisation: list[dict[str, Any]] = list(always_train)
    held_out: list[dict[str, Any]] = []
    for label in labels:
        stratum = by_label[label]
        rng.shuffle(stratum)
        for i, group in enumerate(stratum):  # cuts[label] < len(stratum): a third of the groups, rounded
            (held_out if i < cuts[label] else optimisation).extend(group)
    return optimisation, held_out
