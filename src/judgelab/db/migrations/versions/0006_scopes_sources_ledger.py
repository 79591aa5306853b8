"""key scopes, model allow-lists, job item errors, feedback sources, random audits, the labs ledger

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from judgelab.db.types import JSONType, UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('is_admin', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('projects') as batch:
        batch.add_column(sa.Column('allowed_models', JSONType, nullable=True))
    with op.batch_alter_table('job_items') as batch:
        batch.add_column(sa.Column('error', sa.Text(), nullable=True))
    with op.batch_alter_table('feedback') as batch:
        batch.add_column(sa.Column('source', sa.String(length=32), nullable=False, server_default='manual'))
        batch.add_column(sa.Column('audit_sample_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('metrics') as batch:
        batch.add_column(sa.Column('label_tolerance', sa.Float(), nullable=True))
        batch.add_column(sa.Column('labs_seed', sa.Integer(), nullable=True))
    with op.batch_alter_table('metric_versions') as batch:
        # Which labelled items a labs proposal applied as this version was built from.
        batch.add_column(sa.Column('trained_on', JSONType, nullable=True))
    op.create_table(
        'audit_samples',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('metric_id', sa.Integer(), nullable=False),
        sa.Column('metric_version_id', sa.Integer(), nullable=False),
        sa.Column('seed', sa.Integer(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('population', sa.Integer(), nullable=False),
        sa.Column('strata', JSONType, nullable=False),
        sa.Column('call_ids', JSONType, nullable=False),
        sa.Column('blind', sa.Boolean(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_audit_samples_project_id_projects'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['metric_id'], ['metrics.id'], name=op.f('fk_audit_samples_metric_id_metrics'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_samples')),
    )
    op.create_index(op.f('ix_audit_samples_metric_id'), 'audit_samples', ['metric_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_audit_samples_metric_id'), table_name='audit_samples')
    op.drop_table('audit_samples')
    with op.batch_alter_table('metric_versions') as batch:
        batch.drop_column('trained_on')
    with op.batch_alter_table('metrics') as batch:
        batch.drop_column('labs_seed')
        batch.drop_column('label_tolerance')
    with op.batch_alter_table('feedback') as batch:
        batch.drop_column('audit_sample_id')
        batch.drop_column('source')
    with op.batch_alter_table('job_items') as batch:
        batch.drop_column('error')
    with op.batch_alter_table('projects') as batch:
        batch.drop_column('allowed_models')
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('is_admin')
