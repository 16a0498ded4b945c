"""run progress: run_progress and report_totals, so that runs can be watched from elsewhere

Why: a long index, apply or undo run (often started by a timer, a container or another person)
was visible only in the terminal that started it. Each run now keeps one run_progress row up to
date as it goes (at most about once a second: counts, rate, each worker's file, the latest
errors, a heartbeat), which `dedupdb status --watch`, `dedupdb metrics` and the web dashboard
read. report_totals keeps the figures of each report made (duplicates, reclaimable bytes), the
library's totals over time, which are too costly to compute at every look.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('run_progress',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='index, apply, resume or undo'),
    sa.Column('index_run_id', sa.Integer(), nullable=True),
    sa.Column('apply_run_id', sa.Integer(), nullable=True),
    sa.Column('target', sa.Text(), nullable=False, comment='the folder indexed, or the report acted on'),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False, comment='running, finished, failed, interrupted (a dead run still says running)'),
    sa.Column('phase', sa.String(length=16), nullable=False, comment='planning (walking) or working'),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False, comment='heartbeat: the last update'),
    sa.Column('progressed_at', sa.DateTime(), nullable=False, comment='when a count last moved: a run that stops moving is stuck'),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('planned', sa.Integer(), nullable=False, comment='files to process (apply: actions)'),
    sa.Column('seen', sa.Integer(), nullable=False, comment='files the walk has seen so far'),
    sa.Column('done', sa.Integer(), nullable=False, comment='files processed so far'),
    sa.Column('new', sa.Integer(), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('moved', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('bytes_read', sa.BigInteger(), nullable=False, comment='apply: bytes acted on'),
    sa.Column('rate', sa.Float(), nullable=False, comment='files per second over the last seconds'),
    sa.Column('workers', sa.Text(), nullable=False, comment="JSON: each worker's pid and file"),
    sa.Column('errors', sa.Text(), nullable=False, comment='JSON: the latest errors, numbered'),
    sa.Column('message', sa.Text(), nullable=True, comment='why it failed'),
    sa.ForeignKeyConstraint(['apply_run_id'], ['apply_runs.id'], name=op.f('fk_run_progress_apply_run_id_apply_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['index_run_id'], ['runs.id'], name=op.f('fk_run_progress_index_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_progress')),
    comment='How each index, apply or undo run goes, updated as it runs: watched live'
    )
    with op.batch_alter_table('run_progress', schema=None) as batch_op:
        batch_op.create_index('ix_run_progress_state', ['state'], unique=False)
    op.create_table('report_totals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('made_at', sa.DateTime(), nullable=False),
    sa.Column('images', sa.Integer(), nullable=False, comment='present images compared'),
    sa.Column('clusters', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False, comment='copies that are not their keeper'),
    sa.Column('reclaimable_bytes', sa.BigInteger(), nullable=False),
    sa.Column('settings', sa.Text(), nullable=False, comment="JSON: the report's match settings"),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_totals')),
    comment="The figures of each report made: the library's totals over time"
    )


def downgrade() -> None:
    op.drop_table('report_totals')
    with op.batch_alter_table('run_progress', schema=None) as batch_op:
        batch_op.drop_index('ix_run_progress_state')
    op.drop_table('run_progress')
