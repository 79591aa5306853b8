"""A metric's production pass rate, raw and corrected for its judge's measured errors.

A judge with TPR 0.9 and TNR 0.8 that passes 62 % of calls says the true pass rate is about 60 %
(Rogan-Gladen). The correction needs the judge's TPR and TNR on labelled calls of the same
metric version; its interval comes from a parametric bootstrap over all three measured rates, so
a labelled set of 8 gives the wide interval it deserves.
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.db.models import Metric, MetricResult
from judgelab.labs.agreement import BOOTSTRAP_ROUNDS, Estimate, corrected_pass_rate, wilson
from judgelab.labs.misalignment import metric_report
from judgelab.metrics.definition import BINARY_EVAL_TYPES


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


def corrected_interval(passed: int, n: int, tp: int, pos: int, tn: int, neg: int, seed: int = 0) -> Estimate:
    point = corrected_pass_rate(passed, n, tp / pos, tn / neg) if pos and neg else None
    if point is None:
        return Estimate(None, None, None, n)
    rng = random.Random(seed)
    draws = []
    for _ in range(BOOTSTRAP_ROUNDS // 4):  # three binomial draws each: a quarter of the rounds keeps it quick
        value = corrected_pass_rate(_binomial(rng, n, passed / n), n,
                                    _binomial(rng, pos, tp / pos) / pos, _binomial(rng, neg, tn / neg) / neg)
        if value is not None:
            draws.append(value)
    if len(draws) < BOOTSTRAP_ROUNDS // 8:
        return Estimate(point, None, None, n)
    draws.sort()
    return Estimate(point, draws[int(0.025 * (len(draws) - 1))], draws[int(0.975 * (len(draws) - 1))], n)


def pass_rate(session: Session, metric: Metric, agreement: dict[str, Any] | None = None) -> dict[str, Any]:
    """`agreement`: the current version's, when the caller already computed it (its bootstrap is the costly part)."""
    version = metric.current
    if version.eval_type not in BINARY_EVAL_TYPES:
        return {"metric_id": metric.id, "version": version.version, "applicable": False,
                "reason": "a pass rate needs a binary metric"}
    newest = (select(func.max(MetricResult.id)).where(MetricResult.metric_id == metric.id,
                                                      MetricResult.metric_version_id == version.id)
              .group_by(MetricResult.call_log_id))
    values = session.scalars(select(MetricResult.value).where(MetricResult.id.in_(newest),
                                                              MetricResult.error.is_(None))).all()
    passed = sum(v is True for v in values)
    failed = sum(v is False for v in values)
    n = passed + failed
    out: dict[str, Any] = {
        "metric_id": metric.id, "version": version.version, "applicable": True,
        "raw": wilson(passed, n).as_dict(), "passed": passed, "failed": failed,
        "not_applicable": sum(v is None for v in values),
    }
    if agreement is None:
        agreement = metric_report(session, metric).agreement
    confusion = agreement.get("confusion") if agreement else None
    if not confusion:
        out["corrected"] = None
        out["reason"] = "no labelled calls for this version yet: vote on some of its results to correct the rate"
        return out
    assert agreement is not None
    tp, fn, tn, fp = confusion["tp"], confusion["fn"], confusion["tn"], confusion["fp"]
    corrected = corrected_interval(passed, n, tp, tp + fn, tn, tn + fp, seed=metric.id)
    out["judge"] = {"tpr": agreement["tpr"], "tnr": agreement["tnr"], "labelled": agreement["n"]}
    out["corrected"] = corrected.as_dict()
    if corrected.value is None:
        out["reason"] = ("the judge is no better than chance on the labelled calls (TPR + TNR <= 1), "
                         "or they hold no passes or no fails: the rate cannot be corrected")
    return out
