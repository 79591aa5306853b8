"""Which metrics disagree with people, how, and whether a manual edit or a labs run is the fix.

Per metric, from the current votes: disagreement rate (Wilson interval), false fails, false
passes, unexpected N/A, and agreement (kappa, accuracy, TPR / TNR with intervals) of the current
version only — votes on other versions judged a different prompt, so they are never pooled. A
diagnosis says whether errors share one dominant cause (systemic: fix it by hand), are scattered
(edge cases: ready for labs), or are too few to tell.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.db.models import Feedback, Metric, MetricResult, MetricVersion
from judgelab.feedback.labels import effective_label, majority
from judgelab.feedback.votes import LABS_MIN_FEEDBACK
from judgelab.labs.agreement import agreement, wilson
from judgelab.metrics.definition import BINARY_EVAL_TYPES

SYSTEMIC_RATE = 0.3  # a direction of error this common among labelled votes is not an edge case
SYSTEMIC_SHARE = 0.6  # ... when this share of its reasons name the same thing
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
STOPWORDS = frozenset(
    "the and for that this with was were are but not should have has had been did does its it's his her "
    "their they them she him you your our from into onto than then when what which who whom why how there "
    "here about after before because while also only just very more most some any all each both can could "
    "would will shall may might must call calls caller agent user customer judge metric result said says "
    "say true false pass passed fail failed should've being yes one two out get got".split()
)


@dataclass
class Vote:
    call_id: int
    reviewer: str
    version_id: int | None
    model: str | None  # the model of the result voted on: figures of different models are not pooled
    vote: str
    judged: Any  # what the judge said when the vote was cast
    known: bool
    label: Any
    reason: str


@dataclass
class MetricReport:
    metric_id: int
    name: str
    eval_type: str
    version: int
    results: int
    feedback: int
    disagreement: dict[str, Any]
    false_fails: int
    false_passes: int
    unexpected_na: int
    missed_na: int
    agreement: dict[str, Any] | None  # current version only
    diagnosis: dict[str, Any]
    by_version: list[dict[str, Any]] = field(default_factory=list)
    contested_calls: int = 0  # calls whose reviewers tie: left out until someone settles them
    reviewers: dict[str, Any] | None = None  # Cohen's kappa between reviewers on shared calls

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _votes(session: Session, metric: Metric) -> list[Vote]:
    eval_type = metric.current.eval_type
    rows = session.scalars(select(Feedback).where(Feedback.metric_id == metric.id, Feedback.is_current.is_(True))
                           .order_by(Feedback.id)).all()
    result_ids = [f.metric_result_id for f in rows if f.metric_result_id is not None]
    models = dict(session.execute(select(MetricResult.id, MetricResult.model)
                                  .where(MetricResult.id.in_(result_ids))).all()) if result_ids else {}
    out = []
    for f in rows:
        known, label = effective_label(f.vote, f.has_expected_value, f.expected_value, f.result_value, eval_type)
        out.append(Vote(f.call_log_id, f.reviewer, f.metric_version_id,
                        models.get(f.metric_result_id) if f.metric_result_id is not None else None, f.vote, f.result_value, known,
                        label, f.feedback or ""))
    return out


def one_per_call(votes: list[Vote]) -> tuple[list[Vote], int]:
    """The one rule for several reviewers, as labs applies it: per call, the majority's vote (each
    reviewer's latest); a tie is contested and left out. Returns (votes, contested calls)."""
    by_call: dict[int, list[Vote]] = defaultdict(list)
    for v in votes:
        by_call[v.call_id].append(v)
    out, contested = [], 0
    for call_votes in by_call.values():
        if len(call_votes) == 1:
            out.append(call_votes[0])
            continue
        known = [v for v in call_votes if v.known]
        decided, label = majority([v.label for v in known]) if known else (False, None)
        if decided:
            out.append(next(v for v in known if repr(v.label) == repr(label)))
        elif known:
            contested += 1
        else:
            out.append(call_votes[-1])
    return out, contested


def reviewer_agreement(votes: list[Vote]) -> dict[str, Any] | None:
    """Cohen's kappa between the two reviewers who labelled the most calls in common (None when no
    two reviewers share a labelled call): how far people agree sets how well any judge can."""
    by_reviewer: dict[str, dict[int, Any]] = defaultdict(dict)
    for v in votes:
        if v.known:
            by_reviewer[v.reviewer][v.call_id] = v.label
    best: tuple[int, str, str] | None = None
    names = sorted(by_reviewer)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = len(by_reviewer[a].keys() & by_reviewer[b].keys())
            if shared and (best is None or shared > best[0]):
                best = (shared, a, b)
    if best is None:
        return None
    _n, a, b = best
    calls = sorted(by_reviewer[a].keys() & by_reviewer[b].keys())
    stats = agreement([repr(by_reviewer[a][c]) for c in calls], [repr(by_reviewer[b][c]) for c in calls])
    return {"reviewers": [a, b], "n": len(calls), "kappa": stats.kappa.as_dict(), "accuracy": stats.accuracy.as_dict()}


def dominant_cause(reasons: list[str]) -> tuple[str, float] | None:
    """The word or two-word phrase most of the reasons share, and the share of reasons naming it."""
    if len(reasons) < 2:
        return None
    counts: Counter[str] = Counter()
    for reason in reasons:
        words = [w for w in _WORD.findall(reason.lower()) if w not in STOPWORDS]
        terms = set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}
        counts.update(terms)
    if not counts:
        return None
    # Prefer the phrase over its words when it is as common: it says more.
    term, n = max(counts.items(), key=lambda kv: (kv[1], " " in kv[0], len(kv[0])))
    share = n / len(reasons)
    return (term, share) if share >= SYSTEMIC_SHARE else None


def _diagnose(eval_type: str, votes: list[Vote], labelled: int, false_fails: list[Vote], false_passes: list[Vote],
              unexpected_na: list[Vote]) -> dict[str, Any]:
    if len(votes) < LABS_MIN_FEEDBACK:
        return {"kind": "not_enough_feedback",
                "summary": f"{len(votes)} feedback items; labs needs {LABS_MIN_FEEDBACK} to tell a pattern from chance"}
    for errors, direction, edit in (
        (false_fails, "false fails", "narrow the failure conditions, or add a \"do not flag\" rule for it"),
        (false_passes, "false passes", "add it as an explicit failure condition"),
        (unexpected_na, "unexpected N/A", "widen the metric's scope or its trigger to cover it"),
    ):
        if labelled and len(errors) >= 3 and len(errors) / labelled >= SYSTEMIC_RATE:
            cause = dominant_cause([v.reason for v in errors if v.reason])
            if cause is not None:
                term, share = cause
                return {
                    "kind": "systemic",
                    "direction": direction,
                    "rate": round(len(errors) / labelled, 3),
                    "cause": term,
                    "share": round(share, 3),
                    "summary": f"{len(errors)} of {labelled} labelled calls are {direction}, and "
                               f"{round(100 * share)} % of their reasons mention \"{term}\"",
                    "suggested_edit": f"Edit the description by hand first: about \"{term}\", {edit}. "
                                      "Then re-run and collect feedback on what remains.",
                }
    return {"kind": "edge_cases", "summary": "errors do not share one cause: ready for a labs run"}


def metric_report(session: Session, metric: Metric) -> MetricReport:
    current = metric.current
    eval_type = current.eval_type
    all_votes = _votes(session, metric)
    # The overview follows the current version: votes on an older version's results judged another
    # prompt (after a labs proposal is applied they would keep saying "systemic" about a fixed cause).
    votes, contested = one_per_call([v for v in all_votes if v.version_id == current.id])
    results = session.scalar(
        select(func.count(func.distinct(MetricResult.call_log_id))).where(MetricResult.metric_id == metric.id)
    ) or 0
    disagree = sum(v.vote == "disagree" for v in votes)
    labelled = [v for v in votes if v.known]
    false_fails = [v for v in labelled if v.judged is False and v.label is True]
    false_passes = [v for v in labelled if v.judged is True and v.label is False]
    unexpected_na = [v for v in labelled if v.judged is None and v.label is not None]
    missed_na = [v for v in labelled if v.judged is not None and v.label is None]
    by_version: dict[tuple[int | None, str | None], list[Vote]] = defaultdict(list)
    for v in (v for v in all_votes if v.known):
        by_version[(v.version_id, v.model)].append(v)
    numbers = dict(session.execute(
        select(MetricVersion.id, MetricVersion.version).where(MetricVersion.metric_id == metric.id)).all())
    # The current figure is the current version's, with the model it was judged by most recently.
    latest_model = next((v.model for v in reversed(labelled) if v.version_id == current.id), None)
    versions = []
    current_agreement = None
    for (version_id, model), vs in sorted(by_version.items(),
                                          key=lambda kv: (numbers.get(kv[0][0], 0) if kv[0][0] else 0, kv[0][1] or "")):
        pairs = [(v.label, v.judged) for v in vs if v.label is not None and v.judged is not None]
        if eval_type in BINARY_EVAL_TYPES:
            pairs = [(e, p) for e, p in pairs if isinstance(e, bool) and isinstance(p, bool)]
        stats = agreement([e for e, _ in pairs], [p for _, p in pairs]).as_dict() if pairs else None
        entry = {"version": numbers.get(version_id) if version_id else None, "model": model, "votes": len(vs),
                 "compared": len(pairs), "agreement": stats}
        versions.append(entry)
        if version_id == current.id and model == latest_model:
            current_agreement = stats
    return MetricReport(
        metric_id=metric.id, name=metric.name, eval_type=eval_type, version=current.version, results=results,
        feedback=len(votes), disagreement={**wilson(disagree, len(votes)).as_dict(), "count": disagree},
        false_fails=len(false_fails), false_passes=len(false_passes), unexpected_na=len(unexpected_na),
        missed_na=len(missed_na), agreement=current_agreement,
        diagnosis=_diagnose(eval_type, votes, len(labelled), false_fails, false_passes, unexpected_na),
        by_version=versions, contested_calls=contested, reviewers=reviewer_agreement(all_votes),
    )


def misalignment(session: Session, project_id: int) -> list[MetricReport]:
    """Every live metric with feedback, worst first: by the lower bound of the disagreement
    interval, so a metric with strong evidence ranks above one with 1 disagreement in 1 vote."""
    metrics = session.scalars(
        select(Metric).where(Metric.project_id == project_id, Metric.deleted_at.is_(None)).order_by(Metric.id)
    ).all()
    reports = [metric_report(session, m) for m in metrics]
    return sorted(reports, key=lambda r: (-(r.disagreement["low"] or 0.0), -(r.disagreement["value"] or 0.0), r.metric_id))
