"""initial schema

Revision ID: 0001
Revises: 
"""
import sqlalchemy as sa
from alembic import op

from judgelab.db.types import JSONType, UTCDateTime

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('name', name=op.f('uq_projects_name'))
    )
    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_agents_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('project_id', 'name', name=op.f('uq_agents_project_id_name'))
    )
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agents_project_id'), ['project_id'], unique=False)

    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('revoked_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_api_keys_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_project_id'), ['project_id'], unique=False)

    op.create_table('call_logs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=200), nullable=False),
    sa.Column('timestamp', UTCDateTime(), nullable=False),
    sa.Column('transcript', sa.Text(), nullable=False),
    sa.Column('transcript_json', JSONType, nullable=False),
    sa.Column('call_ended_reason', sa.String(length=200), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('metadata', JSONType, nullable=False),
    sa.Column('dynamic_variables', JSONType, nullable=False),
    sa.Column('voice_recording_url', sa.String(length=2000), nullable=True),
    sa.Column('agent_description', sa.Text(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_call_logs_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_call_logs_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_logs')),
    sa.UniqueConstraint('agent_id', 'call_id', name=op.f('uq_call_logs_agent_id_call_id'))
    )
    with op.batch_alter_table('call_logs', schema=None) as batch_op:
        batch_op.create_index('ix_call_logs_project_agent_ts', ['project_id', 'agent_id', 'timestamp', 'id'], unique=False)
        batch_op.create_index('ix_call_logs_project_ts', ['project_id', 'timestamp', 'id'], unique=False)

    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('deleted_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_metrics_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_metrics_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metrics'))
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_metrics_project_id'), ['project_id'], unique=False)
        batch_op.create_index('uq_metrics_project_name_live', ['project_id', 'name'], unique=True, sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))

    op.create_table('metric_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('metric_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('eval_type', sa.String(length=64), nullable=False),
    sa.Column('enum_values', JSONType, nullable=True),
    sa.Column('custom_code', sa.Text(), nullable=True),
    sa.Column('evaluation_trigger', sa.String(length=32), nullable=False),
    sa.Column('trigger_type', sa.String(length=32), nullable=True),
    sa.Column('evaluation_trigger_prompt', sa.Text(), nullable=True),
    sa.Column('evaluation_trigger_custom_code', sa.Text(), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('change_note', sa.String(length=500), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['metric_id'], ['metrics.id'], name=op.f('fk_metric_versions_metric_id_metrics'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_versions')),
    sa.UniqueConstraint('metric_id', 'version', name=op.f('uq_metric_versions_metric_id_version'))
    )
    op.create_table('test_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('source_call_log_id', sa.Integer(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('transcript', sa.Text(), nullable=False),
    sa.Column('transcript_json', JSONType, nullable=False),
    sa.Column('call_ended_reason', sa.String(length=200), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('metadata', JSONType, nullable=False),
    sa.Column('dynamic_variables', JSONType, nullable=False),
    sa.Column('agent_description', sa.Text(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_test_sets_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_test_sets_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_call_log_id'], ['call_logs.id'], name=op.f('fk_test_sets_source_call_log_id_call_logs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_sets'))
    )
    with op.batch_alter_table('test_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_sets_project_id'), ['project_id'], unique=False)

    op.create_table('metric_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('call_log_id', sa.Integer(), nullable=False),
    sa.Column('metric_id', sa.Integer(), nullable=False),
    sa.Column('metric_version_id', sa.Integer(), nullable=False),
    sa.Column('value', JSONType, nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('extra', JSONType, nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('cache_key', sa.String(length=64), nullable=True),
    sa.Column('job_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['call_log_id'], ['call_logs.id'], name=op.f('fk_metric_results_call_log_id_call_logs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['metric_id'], ['metrics.id'], name=op.f('fk_metric_results_metric_id_metrics'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['metric_version_id'], ['metric_versions.id'], name=op.f('fk_metric_results_metric_version_id_metric_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_metric_results_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_results'))
    )
    with op.batch_alter_table('metric_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_metric_results_cache_key'), ['cache_key'], unique=False)
        batch_op.create_index('ix_metric_results_call_metric', ['call_log_id', 'metric_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_metric_results_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_metric_results_metric_id'), ['metric_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_metric_results_project_id'), ['project_id'], unique=False)

    op.create_table('test_set_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('test_set_id', sa.Integer(), nullable=False),
    sa.Column('metric_id', sa.Integer(), nullable=False),
    sa.Column('feedback', sa.Text(), nullable=False),
    sa.Column('has_expected_value', sa.Boolean(), nullable=False),
    sa.Column('expected_value', JSONType, nullable=True),
    sa.ForeignKeyConstraint(['metric_id'], ['metrics.id'], name=op.f('fk_test_set_items_metric_id_metrics'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['test_set_id'], ['test_sets.id'], name=op.f('fk_test_set_items_test_set_id_test_sets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_set_items'))
    )
    with op.batch_alter_table('test_set_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_test_set_items_metric_id'), ['metric_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_test_set_items_test_set_id'), ['test_set_id'], unique=False)

    op.create_table('feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('call_log_id', sa.Integer(), nullable=False),
    sa.Column('metric_id', sa.Integer(), nullable=False),
    sa.Column('metric_result_id', sa.Integer(), nullable=True),
    sa.Column('metric_version_id', sa.Integer(), nullable=True),
    sa.Column('reviewer', sa.String(length=200), nullable=False),
    sa.Column('vote', sa.String(length=16), nullable=False),
    sa.Column('feedback', sa.Text(), nullable=False),
    sa.Column('has_expected_value', sa.Boolean(), nullable=False),
    sa.Column('expected_value', JSONType, nullable=True),
    sa.Column('result_value', JSONType, nullable=True),
    sa.Column('is_current', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('superseded_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['call_log_id'], ['call_logs.id'], name=op.f('fk_feedback_call_log_id_call_logs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['metric_id'], ['metrics.id'], name=op.f('fk_feedback_metric_id_metrics'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['metric_result_id'], ['metric_results.id'], name=op.f('fk_feedback_metric_result_id_metric_results'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['metric_version_id'], ['metric_versions.id'], name=op.f('fk_feedback_metric_version_id_metric_versions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_feedback_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback'))
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_metric_current', ['metric_id', 'is_current'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_project_id'), ['project_id'], unique=False)
        batch_op.create_index('uq_feedback_current_vote', ['call_log_id', 'metric_id', 'reviewer'], unique=True, sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))

    _create_full_text_search()


def _create_full_text_search() -> None:
    """Full-text search over transcripts: FTS5 on SQLite, a GIN expression index on PostgreSQL."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE call_logs_fts USING fts5("
            "transcript, content='call_logs', content_rowid='id', tokenize='unicode61 remove_diacritics 0', detail=none)"
        )
        # External-content FTS tables are kept in step by triggers, so every writer stays correct.
        op.execute(
            "CREATE TRIGGER call_logs_fts_ai AFTER INSERT ON call_logs BEGIN "
            "INSERT INTO call_logs_fts(rowid, transcript) VALUES (new.id, new.transcript); END"
        )
        op.execute(
            "CREATE TRIGGER call_logs_fts_ad AFTER DELETE ON call_logs BEGIN "
            "INSERT INTO call_logs_fts(call_logs_fts, rowid, transcript) VALUES ('delete', old.id, old.transcript); END"
        )
        op.execute(
            "CREATE TRIGGER call_logs_fts_au AFTER UPDATE OF transcript ON call_logs BEGIN "
            "INSERT INTO call_logs_fts(call_logs_fts, rowid, transcript) VALUES ('delete', old.id, old.transcript); "
            "INSERT INTO call_logs_fts(rowid, transcript) VALUES (new.id, new.transcript); END"
        )
    elif dialect == "postgresql":
        # A stored tsvector: matching rows are re-checked against it, and computing to_tsvector
        # on the fly for thousands of long transcripts costs seconds per query.
        op.execute(
            "ALTER TABLE call_logs ADD COLUMN transcript_fts tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, transcript)) STORED"
        )
        op.execute("CREATE INDEX ix_call_logs_transcript_fts ON call_logs USING gin (transcript_fts)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("call_logs_fts_ai", "call_logs_fts_ad", "call_logs_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS call_logs_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_call_logs_transcript_fts")
        op.execute("ALTER TABLE call_logs DROP COLUMN IF EXISTS transcript_fts")
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('uq_feedback_current_vote', sqlite_where=sa.text('is_current'), postgresql_where=sa.text('is_current'))
        batch_op.drop_index(batch_op.f('ix_feedback_project_id'))
        batch_op.drop_index('ix_feedback_metric_current')

    op.drop_table('feedback')
    with op.batch_alter_table('test_set_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_set_items_test_set_id'))
        batch_op.drop_index(batch_op.f('ix_test_set_items_metric_id'))

    op.drop_table('test_set_items')
    with op.batch_alter_table('metric_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_metric_results_project_id'))
        batch_op.drop_index(batch_op.f('ix_metric_results_metric_id'))
        batch_op.drop_index(batch_op.f('ix_metric_results_job_id'))
        batch_op.drop_index('ix_metric_results_call_metric')
        batch_op.drop_index(batch_op.f('ix_metric_results_cache_key'))

    op.drop_table('metric_results')
    with op.batch_alter_table('test_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_test_sets_project_id'))

    op.drop_table('test_sets')
    op.drop_table('metric_versions')
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_index('uq_metrics_project_name_live', sqlite_where=sa.text('deleted_at IS NULL'), postgresql_where=sa.text('deleted_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_metrics_project_id'))

    op.drop_table('metrics')
    with op.batch_alter_table('call_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_call_logs_project_ts')
        batch_op.drop_index('ix_call_logs_project_agent_ts')

    op.drop_table('call_logs')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_project_id'))

    op.drop_table('api_keys')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agents_project_id'))

    op.drop_table('agents')
    op.drop_table('projects')
