"""Full-text search over call transcripts, one SQL shape per database (see migration 0001)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select, text

from judgelab.db.models import CallLog
from judgelab.errors import InvalidInput

# Letters and digits only: the underscore is a separator for both FTS5 and PostgreSQL's parser, and
# a token that FTS5 would split in two becomes a phrase query, which the index cannot answer.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_SEARCH_WORDS = 32


def search_words(query: str) -> list[str]:
    words = _WORD.findall(query)
    if not words:
        raise InvalidInput("search", "needs at least one word (letters or digits)")
    if len(words) > MAX_SEARCH_WORDS:
        raise InvalidInput("search", f"has {len(words)} words; the limit is {MAX_SEARCH_WORDS}")
    return words


def transcript_matches(dialect: str, query: str) -> ColumnElement[bool]:
    """A WHERE clause: the transcript holds every word of `query` (any order, case-insensitive)."""
    words = search_words(query)
    if dialect == "sqlite":
        # Each word quoted, so FTS5 operators typed by a user are searched for, not obeyed.
        match = " ".join(f'"{w}"' for w in words)
        fts: Select[Any] = select(literal_column("rowid")).select_from(text("call_logs_fts")).where(
            text("call_logs_fts MATCH :fts_query").bindparams(fts_query=match)
        )
        # `id + 0` keeps SQLite from driving the query by primary-key lookups from the match list:
        # after ANALYZE it prefers that plan, which reads every matching row in full (seconds for a
        # common word); scanning the project's covering index and probing the match list does not.
        return (CallLog.id + 0).in_(fts)
    if dialect == "postgresql":
        # transcript_fts is a generated column made by migration 0001, unknown to the ORM model.
        return literal_column("call_logs.transcript_fts").op("@@")(
            func.plainto_tsquery(literal_column("'simple'::regconfig"), " ".join(words))
        )
    # Other databases: a slow but correct fallback.
    clause: ColumnElement[bool] = CallLog.transcript.ilike(f"%{words[0]}%")
    for w in words[1:]:
        clause = clause & CallLog.transcript.ilike(f"%{w}%")
    return clause
