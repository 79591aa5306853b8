"""The metric lab's reads: which metrics disagree with people, and what to review next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from judgelab.api import seed
from judgelab.api.deps import CtxDep, PathId
from judgelab.api.responses import FastJSON
from judgelab.errors import InvalidInput, NotFound
from judgelab.labs.audit import draw_sample, get_sample, sample_dict
from judgelab.labs.misalignment import misalignment
from judgelab.labs.pass_rate import pass_rate
from judgelab.labs.review_queue import review_queue
from judgelab.labs.schedule import schedule_dict, set_schedule
from judgelab.labs.service import (
    DEFAULT_JUDGE_CALLS,
    DEFAULT_REWRITER_CALLS,
    answer_run,
    apply_run,
    discard_run,
    get_run,
    run_dict,
    start_run,
)
from judgelab.labs.to_code import start_conversion
from judgelab.labs.validation import mark_flip, start_validation
from judgelab.metrics.service import get_metric, metric_to_dict

router = APIRouter(tags=["labs"])


@router.get("/api/v1/metrics/misalignment/",
            summary="Metrics worst first: disagreement with intervals, error kinds, agreement, and a diagnosis")
def misalignment_endpoint(ctx: CtxDep) -> FastJSON:
    reports = misalignment(ctx.session, ctx.project_id)
    return FastJSON({"count": len(reports), "results": [r.as_dict() for r in reports]})


@router.get("/api/v1/metrics/{id}/review_queue/",
            summary="Unreviewed results most likely to be wrong, with the signals that say so")
def review_queue_endpoint(
    id: PathId, ctx: CtxDep, limit: Annotated[int, Query(ge=1, le=200, description="at most this many")] = 50,
) -> FastJSON:
    metric = get_metric(ctx.session, ctx.project_id, id)
    items = review_queue(ctx.session, metric, limit=limit)
    return FastJSON({"metric_id": metric.id, "count": len(items), "results": items})


@router.get("/api/v1/metrics/{id}/pass_rate/",
            summary="The current version's pass rate, raw and corrected by the judge's TPR / TNR (Rogan-Gladen)")
def pass_rate_endpoint(id: PathId, ctx: CtxDep) -> FastJSON:
    return FastJSON(pass_rate(ctx.session, get_metric(ctx.session, ctx.project_id, id)))


class ProcessFeedbacksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    test_set_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        default=None, max_length=1000, description="default: every test set with items for this metric")
    metric_type: str = Field(default="llm_judge", description="llm_judge (custom_code is not supported yet)")
    skip_evaluation: bool = Field(default=False, description="propose without running the judge (the proposal is unscored)")
    simplified_prompt: Annotated[str, Field(max_length=50_000)] | None = Field(default=None, description="the starting point")
    max_judge_calls: int = Field(default=DEFAULT_JUDGE_CALLS, ge=10, le=5000, description="judge-call budget of the run")
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1,
                             description="the split's seed; fixed per metric (default: the metric's, 0 at first), and "
                                         "changing it is recorded on the metric")
    generators: list[str] | None = Field(default=None, max_length=4,
                                         description="candidate generators to use: rewrite, rules, few-shot, trigger (default: all; [] with simplified_prompt scores that prompt alone)")
    max_rewriter_calls: int = Field(default=DEFAULT_REWRITER_CALLS, ge=0, le=100,
                                    description="rewriter (reflection) calls the run may make; each asks for several "
                                                "hypotheses. Reported with the judge calls and cost")
    replace_code_trigger: bool = Field(default=False, description="let labs propose an LLM trigger in place of a "
                                                                  "trigger written as code (twice the cost per call)")


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    progress_id: Annotated[str, Field(min_length=1, max_length=64)]
    answer: object = None
    answers: dict[Annotated[str, Field(max_length=100)], object] | None = Field(
        default=None, max_length=100, description="answers keyed by question id (the seed platform's form)")
    action: str | None = Field(default=None, description='"skip": leave the contradicting items out')


@router.post("/test_framework/metric-reviews/process_feedbacks/", status_code=202,
             summary="Start a labs run: improve a metric from its feedback, proven on held-out calls; never applied")
def process_feedbacks(request: Request, body: ProcessFeedbacksIn, ctx: CtxDep) -> FastJSON:
    run = start_run(ctx.session, ctx.project_id, body.metric_id, test_set_ids=body.test_set_ids,
                    metric_type=body.metric_type, skip_evaluation=body.skip_evaluation,
                    simplified_prompt=body.simplified_prompt, max_judge_calls=body.max_judge_calls, seed=body.seed,
                    generators=body.generators, max_rewriter_calls=body.max_rewriter_calls,
                    replace_code_trigger=body.replace_code_trigger)
    ctx.commit()
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
    return FastJSON({"progress_id": run.id}, status_code=202)


@router.get("/test_framework/metric-reviews/process_feedbacks_progress/",
            summary="A labs run in the seed platform's vocabulary (status success / error / in_progress, an output object)")
def process_feedbacks_progress(
    ctx: CtxDep, progress_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> FastJSON:
    """`status` is `success`, `error` or `in_progress`; when done, `output` holds `metric_description`,
    `evaluation_trigger`, `improved_metric_description`, `improved_evaluation_trigger` and
    `meta_harness` (score and counts from the held-out report). judgelab's own fields are kept beside
    them, its status word in `judgelab_status`; `GET /api/v1/labs/{id}/` answers in judgelab's terms."""
    return FastJSON(seed.labs_progress(run_dict(get_run(ctx.session, ctx.project_id, progress_id))))


@router.get("/api/v1/labs/{progress_id}/", summary="A labs run: status, stage, judge calls and cost; when completed, "
            "the proposal, its scores and the verdict")
def labs_progress(progress_id: Annotated[str, Path(min_length=1, max_length=64)], ctx: CtxDep) -> FastJSON:
    return FastJSON(run_dict(get_run(ctx.session, ctx.project_id, progress_id)))


@router.post("/test_framework/metric-reviews/process_feedbacks_answer/",
             summary="Answer a run's question (needs_input): the right value, or action skip")
def process_feedbacks_answer(body: AnswerIn, ctx: CtxDep) -> FastJSON:
    run = get_run(ctx.session, ctx.project_id, body.progress_id)
    answer, given = body.answer, "answer" in body.model_fields_set
    if body.answers is not None:
        # The seed platform's form: answers keyed by question id; the one for the open question counts.
        asked = (run.question or {}).get("id")
        if asked not in body.answers:
            raise InvalidInput("answers", f"no answer for the open question {asked!r}" if asked else
                               "the run has no open question")
        answer, given = body.answers[asked], True
        if isinstance(answer, dict) and answer.get("action") == "skip":
            body.action, given = "skip", False
    if body.action is None and not given:
        raise InvalidInput("answer", 'send "answer" (the right value), "answers" keyed by question id, or "action": "skip"')
    metric = get_metric(ctx.session, ctx.project_id, run.metric_id)
    run = answer_run(ctx.session, ctx.project_id, body.progress_id, answer, body.action,
                     metric.current.eval_type, metric.current.enum_values)
    out = run_dict(run)
    ctx.commit()
    return FastJSON(out)


class ValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Annotated[str, Field(min_length=1, max_length=50_000)] | None = Field(
        default=None, description="a proposal to validate before applying it; default: the current version")
    sample: int = Field(default=20, ge=0, le=500, description="recent production calls outside the labelled set")
    confirm: bool = Field(default=False, description="required when more than 100 calls would be judged")
    max_judge_calls: int = Field(default=300, ge=1, le=5000)


class MarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    right: bool = Field(description="is the new verdict right?")
    feedback: Annotated[str, Field(max_length=20_000)] = ""
    expected_value: object = Field(default=None, description="the right value, when the flip was wrong and not binary")


@router.post("/api/v1/metrics/{id}/validate/", status_code=202,
             summary="Rerun a version (or a proposal) on labelled and recent calls; report the flips")
def validate_endpoint(request: Request, id: PathId, body: ValidateIn, ctx: CtxDep) -> FastJSON:
    run = start_validation(ctx.session, ctx.project_id, id, description=body.description, sample=body.sample,
                           confirm=body.confirm, max_judge_calls=body.max_judge_calls, default_model=ctx.settings.model)
    ctx.commit()
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
    return FastJSON({"validation_id": run.id, "progress_url": f"/api/v1/validations/{run.id}/"}, status_code=202)


@router.get("/api/v1/validations/{validation_id}/", summary="A validation's status and, when done, its flips")
def validation_endpoint(validation_id: Annotated[str, Path(min_length=1, max_length=64)], ctx: CtxDep) -> FastJSON:
    return FastJSON(run_dict(get_run(ctx.session, ctx.project_id, validation_id, field="validation_id")))


@router.post("/api/v1/validations/{validation_id}/flips/{index}/mark/",
             summary="Mark a flip right or wrong: it becomes feedback on that call")
def mark_flip_endpoint(validation_id: Annotated[str, Path(min_length=1, max_length=64)],
                       index: Annotated[int, Path(ge=0, le=100_000)], body: MarkIn, ctx: CtxDep) -> FastJSON:
    out = mark_flip(ctx.session, ctx.project_id, validation_id, index, body.right, body.feedback,
                    body.expected_value, ctx.key_name)
    ctx.commit()
    return FastJSON(out)


class ToCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_judge_calls: int = Field(default=200, ge=2, le=5000, description="both versions run once on each labelled call")


@router.post("/api/v1/metrics/{id}/to_custom_code/", status_code=202,
             summary="Convert a judge metric to code that sends only the relevant turns; measured on labelled calls")
def to_custom_code_endpoint(request: Request, id: PathId, body: ToCodeIn, ctx: CtxDep) -> FastJSON:
    run = start_conversion(ctx.session, ctx.project_id, id, body.max_judge_calls)
    ctx.commit()
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
    return FastJSON({"conversion_id": run.id, "progress_url": f"/api/v1/conversions/{run.id}/"}, status_code=202)


@router.get("/api/v1/conversions/{conversion_id}/",
            summary="A conversion's code, its agreement next to the judge's, and input tokens saved per call")
def conversion_endpoint(conversion_id: Annotated[str, Path(min_length=1, max_length=64)], ctx: CtxDep) -> FastJSON:
    return FastJSON(run_dict(get_run(ctx.session, ctx.project_id, conversion_id, field="conversion_id")))


class RunReviewsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: bool = Field(default=False, description="required when more than 100 calls would be judged")


@router.post("/test_framework/v1/metrics/{id}/run_reviews/", status_code=202,
             summary="Re-score a metric on its labelled calls (after a PATCH), as a job with a progress id")
def run_reviews_endpoint(request: Request, id: PathId, ctx: CtxDep, body: RunReviewsIn | None = None) -> FastJSON:
    """The platform's name for validating the current version on the labelled calls alone: follow it at
    process_feedbacks_progress or /api/v1/validations/{id}/. Above 100 calls the cost guard asks for
    `"confirm": true` (a 409 with the estimate)."""
    run = start_validation(ctx.session, ctx.project_id, id, description=None, sample=0,
                           confirm=bool(body and body.confirm), max_judge_calls=5000, default_model=ctx.settings.model)
    ctx.commit()
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
    return FastJSON({"progress_id": run.id, "validation_id": run.id}, status_code=202)


@router.get("/test_framework/metric-reviews/run_reviews_progress/",
            summary="A run_reviews run in the seed platform's vocabulary (status success / error / in_progress)")
def run_reviews_progress(ctx: CtxDep, progress_id: Annotated[str, Query(min_length=1, max_length=64)]) -> FastJSON:
    return FastJSON(seed.run_reviews_progress(run_dict(get_run(ctx.session, ctx.project_id, progress_id))))


@router.get("/test_framework/v1/metrics/{id}/run_reviews_progress/",
            summary="A run_reviews run of this metric, in the seed platform's vocabulary")
def metric_run_reviews_progress(id: PathId, ctx: CtxDep,
                                progress_id: Annotated[str, Query(min_length=1, max_length=64)]) -> FastJSON:
    run = get_run(ctx.session, ctx.project_id, progress_id)
    if run.metric_id != id:
        raise NotFound("progress_id", f"run {progress_id!r} is not a run of metric {id}")
    return FastJSON(seed.run_reviews_progress(run_dict(run)))


class AuditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=1, le=500, description="calls to draw")
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1, description="default: a random seed, recorded")
    blind: bool = Field(default=True, description="hide the judge's verdict until the call is labelled")


@router.post("/api/v1/metrics/{id}/audit_sample/", status_code=201,
             summary="Draw unlabelled calls at random (stratified by verdict, seeded, recorded) for blind review")
def audit_sample_endpoint(id: PathId, body: AuditIn, ctx: CtxDep) -> FastJSON:
    sample = draw_sample(ctx.session, ctx.project_id, id, body.size, seed=body.seed, blind=body.blind,
                         created_by=ctx.key_name)
    out = sample_dict(ctx.session, sample, get_metric(ctx.session, ctx.project_id, id))
    ctx.commit()
    return FastJSON(out, status_code=201)


@router.get("/api/v1/audit_samples/{id}/", summary="An audit sample: its calls, and which are labelled")
def audit_sample_get(id: PathId, ctx: CtxDep) -> FastJSON:
    sample = get_sample(ctx.session, ctx.project_id, id)
    return FastJSON(sample_dict(ctx.session, sample, get_metric(ctx.session, ctx.project_id, sample.metric_id)))


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool
    auto_apply: bool = Field(default=False, description="apply a proposal only when its held-out verdict is improved")
    min_new_feedback: int = Field(default=6, ge=1, le=10_000, description="new feedback items that trigger a run")


@router.put("/api/v1/metrics/{id}/labs_schedule/",
            summary="Run labs on new feedback automatically (checked every minute); read-only unless auto_apply")
def put_schedule(id: PathId, body: ScheduleIn, ctx: CtxDep) -> FastJSON:
    out = set_schedule(ctx.session, ctx.project_id, id, enabled=body.enabled, auto_apply=body.auto_apply,
                       min_new_feedback=body.min_new_feedback)
    ctx.commit()
    return FastJSON(out)


@router.get("/api/v1/metrics/{id}/labs_schedule/", summary="A metric's labs schedule")
def get_schedule(id: PathId, ctx: CtxDep) -> FastJSON:
    return FastJSON(schedule_dict(get_metric(ctx.session, ctx.project_id, id)))


@router.post("/api/v1/labs/{progress_id}/apply/",
             summary="Apply a completed run's proposal as the metric's new version (a person's decision, never automatic)")
def apply_endpoint(progress_id: Annotated[str, Path(max_length=64)], ctx: CtxDep) -> FastJSON:
    metric = apply_run(ctx.session, ctx.project_id, progress_id, ctx.key_name)
    out = metric_to_dict(metric)
    ctx.commit()
    return FastJSON(out)


@router.post("/api/v1/labs/{progress_id}/discard/", summary="Discard a completed run's proposal")
def discard_endpoint(progress_id: Annotated[str, Path(max_length=64)], ctx: CtxDep) -> FastJSON:
    out = run_dict(discard_run(ctx.session, ctx.project_id, progress_id, ctx.key_name))
    ctx.commit()
    return FastJSON(out)
