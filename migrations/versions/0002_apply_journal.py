"""apply journal: apply_runs and actions, for `dedupdb apply`, `undo` and `history`

Why: acting on duplicates must be resumable after a crash and reversible. Each file's action
is written here before and after the filesystem step (planned -> done), with where the file
went. Images that `apply` moved, trashed, deleted or linked get a status saying so (a String
column already; no schema change needed for that).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 09:26:42.031499
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('apply_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False, comment='move, trash, hardlink, symlink or delete'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='running, interrupted, done, undone, partly-undone'),
    sa.Column('quarantine', sa.LargeBinary(), nullable=True, comment='folder the files were moved to (move, links)'),
    sa.Column('source', sa.Text(), nullable=False, comment='the report file, or the live report'),
    sa.Column('host', sa.String(length=255), nullable=False, comment='who runs it: a live run is a lock'),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('undone_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apply_runs')),
    comment='One `dedupdb apply`: what it did, so it can be resumed or undone'
    )
    op.create_table('actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=True, comment='the duplicate'),
    sa.Column('keeper_id', sa.Integer(), nullable=True),
    sa.Column('cluster', sa.Integer(), nullable=False, comment="the report's cluster id"),
    sa.Column('state', sa.String(length=16), nullable=False, comment='planned (may be mid-way: check the disk), done, skipped, undone'),
    sa.Column('path', sa.LargeBinary(), nullable=False, comment="the duplicate's absolute path"),
    sa.Column('display_path', sa.Text(), nullable=False),
    sa.Column('keeper_path', sa.LargeBinary(), nullable=False),
    sa.Column('destination', sa.LargeBinary(), nullable=True, comment='where it went (quarantine, trash); set before'),
    sa.Column('size', sa.BigInteger(), nullable=False, comment='indexed size, mtime and hash'),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True, comment='why skipped'),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_actions_image_id_images'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['keeper_id'], ['images.id'], name=op.f('fk_actions_keeper_id_images'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['apply_runs.id'], name=op.f('fk_actions_run_id_apply_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_actions')),
    comment='The journal: one row per file, written before and after touching it'
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index('ix_actions_run_id_state', ['run_id', 'state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index('ix_actions_run_id_state')

    op.drop_table('actions')
    op.drop_table('apply_runs')
