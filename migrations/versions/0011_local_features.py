"""local features: a table of ORB keypoints per picture content, for `report --deep`

Why: whole-frame perceptual hashes miss heavy and off-centre crops, tilts and pictures shown
inside a larger frame; local features (features.extract: ORB keypoints and descriptors, a grey
thumbnail, a text-likeness score) find them. Stored only by `dedupdb index --features`, keyed by
content hash so that exact copies and moved files share one row. New table only: no existing
row changes, and a database without it simply has no features.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'local_features',
        sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False,
                  comment="BLAKE3-256 of the file's bytes"),
        sa.Column('params', sa.String(length=64), nullable=False,
                  comment='features.PARAMS when extracted; rows of others are not compared'),
        sa.Column('width', sa.Integer(), nullable=False,
                  comment='of the feature image the points are in'),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False, comment='keypoints stored'),
        sa.Column('points', sa.LargeBinary(), nullable=False,
                  comment='x, y per keypoint, uint16 little-endian quarter pixels'),
        sa.Column('descriptors', sa.LargeBinary(), nullable=False,
                  comment='32-byte ORB descriptors'),
        sa.Column('thumb_width', sa.Integer(), nullable=False),
        sa.Column('thumb', sa.LargeBinary(), nullable=False,
                  comment='grey thumbnail (longest side 64) to check a matched region'),
        sa.Column('textlike', sa.Float(), nullable=False,
                  comment='0..1, how much it looks like printed text (not matched above 0.6)'),
        sa.PrimaryKeyConstraint('content_hash', name=op.f('pk_local_features')),
        comment="ORB keypoints of a picture's content, for the second matching stage "
        '(`index --features`, `report --deep`); one row per content, shared by its copies',
    )


def downgrade() -> None:
    op.drop_table('local_features')
