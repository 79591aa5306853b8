"""Settings, read from JUDGELAB_* environment variables (and a .env file in the working dir)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
