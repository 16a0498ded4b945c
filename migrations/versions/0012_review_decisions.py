"""review decisions: keeper choices and skips made in the review UI (dedupdb serve)

Why: a person reviewing clusters in the browser chooses another keeper, keeps several copies,
or leaves a cluster alone; `dedupdb apply` and the UI must honour that, and a decided cluster
must not come back for review unless its files change. A decision is kept by a key made of the
members' content hashes (as not_duplicates keeps pairs), so it survives a rebuilt report and
re-index, and lapses by itself when a member's content changes or a new copy joins.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('review_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_key', sa.LargeBinary(length=16), nullable=False, comment="BLAKE2b-128 of the members' sorted content hashes"),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='keep (the keepers listed) or skip'),
    sa.Column('keepers', sa.Text(), nullable=False, comment='JSON [[content hash hex, path], ...]: the first is the keeper'),
    sa.Column('members', sa.Integer(), nullable=False, comment='how many files, to show'),
    sa.Column('label', sa.Text(), nullable=False, comment="the keeper's path when decided, to show"),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_decisions')),
    sa.UniqueConstraint('cluster_key', name=op.f('uq_review_decisions_cluster_key')),
    comment='Keeper choices and skips made while reviewing (dedupdb serve)'
    )


def downgrade() -> None:
    op.drop_table('review_decisions')
