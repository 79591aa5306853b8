from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from judgelab.db import Database, migrate
from judgelab.db.engine import MIGRATIONS_DIR
from judgelab.db.models import Base


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # Full-text search objects (FTS5 tables on SQLite, a GIN expression index on PostgreSQL) live
    # only in the migration: the models cannot express them.
    diff = [d for d in diff if "fts" not in getattr(d[-1] if d[0] == "remove_column" else d[1], "name", "")]
    assert diff == []


def test_migrate_is_idempotent(db: Database) -> None:
    migrate(db.engine)
    migrate(db.engine)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == _head()


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head
