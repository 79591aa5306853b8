"""The ORM models. Every object lives in exactly one project; services always filter by it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from judgelab.db.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Money the project's evaluation jobs may spend per UTC day; None: the server's default (if any).
    daily_budget_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Judge models (provider/model) this project's metrics may use; None: any.
    allowed_models: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    # Voice platforms' webhook secrets by platform (verifying needs the secret itself, not a hash).
    webhook_secrets: Mapped[dict[str, str] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Only a hash is stored; the prefix lets people tell their keys apart in listings.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Admin keys may create projects, see and revoke every key, and use local model files.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    project: Mapped[Project] = relationship()


class WebSession(Base):
    """A browser login: made from an API key, valid while that key is and until it expires."""

    __tablename__ = "web_sessions"
    # The cookie holds a random token; only its hash is stored, like API keys.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    api_key: Mapped[ApiKey] = relationship()


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The agent's system prompt, shown to judges as `agent_description`.
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallLog(Base):
    __tablename__ = "call_logs"
    __table_args__ = (
        UniqueConstraint("agent_id", "call_id"),
        Index("ix_call_logs_project_ts", "project_id", "timestamp", "id"),
        # Leading with project_id lets the planner serve agent-filtered lists and counts from the index.
        Index("ix_call_logs_project_agent_ts", "project_id", "agent_id", "timestamp", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    # The caller's own id for the call; unique per agent so re-sending updates in place.
    call_id: Mapped[str] = mapped_column(String(200))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    transcript: Mapped[str] = mapped_column(Text, default="")
    transcript_json: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    call_ended_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    dynamic_variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    voice_recording_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # Per-call system prompt when it differs from the agent's (e.g. imported OpenAI system messages).
    agent_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Hash of everything a judge sees; the evaluation cache keys on it.
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    agent: Mapped[Agent] = relationship(lazy="joined")


class Metric(Base):
    __tablename__ = "metrics"
    __table_args__ = (
        # Names are how custom_code reads other metrics' results, so live ones must be unique.
        Index(
            "uq_metrics_project_name_live",
            "project_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # {"enabled", "auto_apply", "min_new_feedback"}: labs runs started by the scheduler.
    labs_schedule: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # The newest feedback id a scheduled run has covered: "new feedback" is what came after it.
    labs_scheduled_through: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # How far a numeric label and a verdict may differ and still agree; None: the eval type's default.
    label_tolerance: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The labs split's seed, fixed per metric so reruns cannot be shopped for a verdict.
    labs_seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    versions: Mapped[list[MetricVersion]] = relationship(
        back_populates="metric", order_by="MetricVersion.version", lazy="selectin"
    )

    @property
    def current(self) -> MetricVersion:
        for v in self.versions:
            if v.version == self.current_version:
                return v
        raise LookupError(f"metric {self.id} has no version {self.current_version}")


class MetricVersion(Base):
    """An immutable snapshot of everything that decides a metric's verdicts."""

    __tablename__ = "metric_versions"
    __table_args__ = (UniqueConstraint("metric_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    eval_type: Mapped[str] = mapped_column(String(64))
    enum_values: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    custom_code: Mapped[str | None] = mapped_column(Text, nullable=True)
    evaluation_trigger: Mapped[str] = mapped_column(String(32), default="always")
    trigger_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    evaluation_trigger_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    evaluation_trigger_custom_code: Mapped[str | None] = mapped_column(Text, nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    change_note: Mapped[str] = mapped_column(String(500), default="")
    # The labelled items (keys) a labs proposal applied as this version was built from: they never
    # enter a later held-out set of this metric.
    trained_on: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    metric: Mapped[Metric] = relationship(back_populates="versions")


class MetricResult(Base):
    __tablename__ = "metric_results"
    __table_args__ = (
        Index("ix_metric_results_call_metric", "call_log_id", "metric_id", "id"),
        Index("ix_metric_results_project_created", "project_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    call_log_id: Mapped[int] = mapped_column(ForeignKey("call_logs.id", ondelete="CASCADE"))
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"), index=True)
    metric_version_id: Mapped[int] = mapped_column(ForeignKey("metric_versions.id", ondelete="CASCADE"))
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    explanation: Mapped[str] = mapped_column(Text, default="")
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # An explicit failure to evaluate (bad verdict, timeout...). Never to be read as pass or fail.
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    cache_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    metric_version: Mapped[MetricVersion] = relationship(lazy="joined")


class Feedback(Base):
    """One vote by one reviewer on one metric of one call; older votes stay as history."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index(
            "uq_feedback_current_vote",
            "call_log_id",
            "metric_id",
            "reviewer",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
        Index("ix_feedback_metric_current", "metric_id", "is_current"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    call_log_id: Mapped[int] = mapped_column(ForeignKey("call_logs.id", ondelete="CASCADE"))
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"))
    metric_result_id: Mapped[int | None] = mapped_column(
        ForeignKey("metric_results.id", ondelete="SET NULL"), nullable=True
    )
    metric_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("metric_versions.id", ondelete="SET NULL"), nullable=True
    )
    reviewer: Mapped[str] = mapped_column(String(200))
    vote: Mapped[str] = mapped_column(String(16))
    feedback: Mapped[str] = mapped_column(Text, default="")
    has_expected_value: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # What the judge had said when the vote was cast, so the label survives re-evaluation.
    result_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where the label came from: review_queue (picked because it looked wrong), random_audit
    # (picked at random), validation_flip, test_set, manual (the person chose the call).
    source: Mapped[str] = mapped_column(String(32), default="manual", server_default="manual")
    audit_sample_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TestSet(Base):
    """A call frozen as it was, with per-metric expected outcomes: labs' labelled data."""

    __tablename__ = "test_sets"
    __test__ = False  # not a pytest class
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    source_call_log_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_logs.id", ondelete="SET NULL"), nullable=True
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), nullable=True)
    transcript: Mapped[str] = mapped_column(Text, default="")
    transcript_json: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    call_ended_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    dynamic_variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    agent_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    items: Mapped[list[TestSetItem]] = relationship(
        back_populates="test_set", order_by="TestSetItem.id", lazy="selectin", cascade="all, delete-orphan"
    )


class TestSetItem(Base):
    __tablename__ = "test_set_items"
    __test__ = False
    id: Mapped[int] = mapped_column(primary_key=True)
    test_set_id: Mapped[int] = mapped_column(ForeignKey("test_sets.id", ondelete="CASCADE"), index=True)
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"), index=True)
    feedback: Mapped[str] = mapped_column(Text, default="")
    has_expected_value: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    test_set: Mapped[TestSet] = relationship(back_populates="items")


class Job(Base):
    """A durable background job (an evaluation); the DBOS workflow that runs it has the same id."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_project_created", "project_id", "created_at"), Index("ix_jobs_status", "status"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    # queued -> starting -> running -> completed | failed | stopped (budget) | cancelled
    status: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    executor_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Worker(Base):
    """A process running jobs, by its DBOS executor id: its heartbeat, and who took over its
    pending workflows when it fell silent (`jobs/heartbeat.py`)."""

    __tablename__ = "workers"
    executor_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    token: Mapped[str] = mapped_column(String(64), default="")  # this start of the process
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    taken_over_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    taken_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    recovered_workflows: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requeued_jobs: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ProviderBatch(Base):
    """A batch an evaluation job submitted to a provider's batch API, with the keys of the
    requests it holds: a restarted job polls it instead of paying for the same requests again."""

    __tablename__ = "provider_batches"
    __table_args__ = (Index("ix_provider_batches_job", "job_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[str] = mapped_column(String(200))
    request_keys: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JobItem(Base):
    """One evaluation a job finished. The primary key makes a replayed step a no-op: a job never
    stores two results for the same call and metric, whatever crashed where."""

    __tablename__ = "job_items"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    call_log_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))  # evaluated | error | cached
    result_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    llm_calls: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    # Why an evaluation has no result (a vanished call, an engine failure): never a silent gap.
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditSample(Base):
    """Calls drawn at random (seeded, stratified by the current verdict) for blind review: the
    labels nobody picked, on which a labs verdict may rest."""

    __tablename__ = "audit_samples"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"), index=True)
    metric_version_id: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    population: Mapped[int] = mapped_column(Integer)
    strata: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    call_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    blind: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabsRun(Base):
    """One labs run (process_feedbacks): a DBOS workflow with the same id; its proposal is never applied by it."""

    __tablename__ = "labs_runs"
    __table_args__ = (Index("ix_labs_runs_project_created", "project_id", "created_at"), Index("ix_labs_runs_status", "status"))
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    metric_id: Mapped[int] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"))
    metric_version_id: Mapped[int] = mapped_column(Integer)
    # queued -> starting -> running <-> needs_input -> completed | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    question: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    executor_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
