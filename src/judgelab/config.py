"""Settings, read from JUDGELAB_* environment variables (and a .env file in the working dir)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JUDGELAB_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("./judgelab-data"), description="Where the SQLite database lives")
    database_url: str | None = Field(
        default=None, description="postgresql://... to use PostgreSQL instead of the embedded SQLite"
    )
    model: str | None = Field(
        default=None, description="the default judge model, provider/model (e.g. openai/gpt-4.1-mini)"
    )
    rewriter_model: str | None = Field(
        default=None, description="the model labs uses to rewrite judge prompts, provider/model (default: model); "
        "a stronger model than the judge often writes better prompts"
    )
    # Jobs (DBOS). Its system tables live in their own SQLite file next to ours, or in the `dbos`
    # schema of the same PostgreSQL database, unless jobs_database_url says otherwise.
    jobs_database_url: str | None = Field(default=None, description="where DBOS keeps workflow state")
    jobs_schema: str = Field(default="dbos", description="PostgreSQL schema for DBOS's tables")
    executor_id: str = Field(
        default="local",
        description="this process's DBOS executor id: a restarted process resumes the workflows of its id, "
        "so give every concurrently running worker its own, stable id",
    )
    judge_concurrency: int = Field(default=32, ge=1, description="requests in flight per provider, per process")
    judge_requests_per_second: float | None = Field(default=None, gt=0, description="per provider, per process")
    job_chunk_size: int = Field(default=25, ge=1, le=1000, description="calls per queued unit of an evaluation job")
    worker_timeout_s: float = Field(
        default=60.0, ge=0.5, le=86_400,
        description="a worker whose heartbeat is older than this is dead: one survivor takes over its pending workflows",
    )
    batch_poll_seconds: float = Field(default=30.0, gt=0, le=3600,
                                      description="how often a batch job asks the provider whether its batch has ended")
    batch_window_seconds: float = Field(default=1.0, gt=0, le=600,
                                        description="requests made within this many seconds go in one provider batch")
    batch_chunk_size: int = Field(default=1000, ge=1, le=10_000, description="calls per queued unit of a batch job")
    worker_chunks: int = Field(default=8, ge=1, le=256, description="job chunks one process runs at once")
    daily_budget_usd: float | None = Field(
        default=None, ge=0, description="default money per project per UTC day for evaluation jobs"
    )
    # The custom_code sandbox: bubblewrap by default; `process` is for one trusted user on a laptop.
    sandbox: Literal["bwrap", "process"] = Field(default="bwrap", description="bwrap (isolated) or process (trusted code only)")
    sandbox_concurrency: int | None = Field(default=None, ge=1, le=1024, description="sandboxes at once per process (default 2 x cores)")
    sandbox_memory_mb: int = Field(default=512, ge=32, le=65536)
    sandbox_cpu_seconds: int = Field(default=5, ge=1, le=3600)
    sandbox_wall_seconds: float = Field(default=10.0, gt=0, le=3600)
    sandbox_scratch_total_mb: int = Field(default=64, ge=1, le=65536, description="scratch space of all sandboxes together")
    judge_max_input_chars: int = Field(default=400_000, ge=2_000, le=10_000_000,
                                       description="a call longer than this (characters; about 4 per token) is judged "
                                                   "on an excerpt that says so, not sent to overflow the model's context")
    sandbox_max_judge_calls: int = Field(default=5, ge=0, le=1000,
                                         description="LLM requests nested judge() calls may make per evaluation, re-asks included")
    # The web UI behind a TLS-terminating proxy: trust its X-Forwarded-Proto / X-Forwarded-For.
    trust_proxy: bool = Field(default=False, description="read X-Forwarded-Proto and X-Forwarded-For from a proxy in front")
    login_failures_per_minute: int = Field(default=10, ge=1, le=10_000, description="failed web logins per client address per minute")
    # Limits on what one call may hold. The transcript limit keeps PostgreSQL's tsvector (1 MB cap)
    # and a judge's context window in reach; the others stop a single request from exhausting memory.
    max_transcript_chars: int = 500_000
    max_transcript_turns: int = 5_000
    max_json_field_bytes: int = 256_000
    max_import_bytes: int = 200_000_000
    max_page_size: int = 200
    default_page_size: int = 50
    sql_echo: bool = False

    @property
    def resolved_sandbox_concurrency(self) -> int:
        return self.sandbox_concurrency or 2 * (os.cpu_count() or 1)

    @property
    def resolved_jobs_database_url(self) -> str:
        if self.jobs_database_url:
            return normalize_database_url(self.jobs_database_url)
        main = self.resolved_database_url
        if main.startswith("sqlite:///"):
            return main[: -len(".db")] + "-jobs.db" if main.endswith(".db") else main + "-jobs"
        return main

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'judgelab.db').resolve()}"


def normalize_database_url(url: str) -> str:
    """Point plain postgres URLs at psycopg 3, the driver we install."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
