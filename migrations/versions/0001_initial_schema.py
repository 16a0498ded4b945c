"""initial schema: roots, images (metadata, hashes, signals), failures, runs, settings

Why: the first schema. Every later change is a new revision; never edit this one.

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 09:14:54.090264
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('roots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.LargeBinary(), nullable=False, comment='absolute, as bytes'),
    sa.Column('display_path', sa.Text(), nullable=False, comment='path as readable text'),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_indexed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roots')),
    sa.UniqueConstraint('path', name=op.f('uq_roots_path')),
    comment="A folder the user indexed; its images' paths are relative"
    )
    op.create_table('settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False, comment='JSON-encoded value'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_settings')),
    comment='Database-wide parameters, e.g. the hash size all rows share'
    )
    op.create_table('failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('root_id', sa.Integer(), nullable=False),
    sa.Column('relpath', sa.LargeBinary(), nullable=False),
    sa.Column('display_path', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='failed or skipped'),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False, comment="-1 when it could not be stat'ed"),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['root_id'], ['roots.id'], name=op.f('fk_failures_root_id_roots'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_failures')),
    sa.UniqueConstraint('root_id', 'relpath', name=op.f('uq_failures_root_id')),
    comment='Files that could not be indexed, and why; retried only when they change'
    )
    op.create_table('images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('root_id', sa.Integer(), nullable=False),
    sa.Column('relpath', sa.LargeBinary(), nullable=False, comment='path below the root, as bytes'),
    sa.Column('display_path', sa.Text(), nullable=False, comment='relpath as readable text'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='present or missing'),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('device', sa.BigInteger(), nullable=False, comment='st_dev: same file = same inode'),
    sa.Column('inode', sa.BigInteger(), nullable=False),
    sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False, comment='BLAKE2b-256 of bytes'),
    sa.Column('width', sa.Integer(), nullable=False, comment='upright (EXIF orientation applied)'),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False, comment='Pillow mode of the stored pixels'),
    sa.Column('bit_depth', sa.Integer(), nullable=False),
    sa.Column('lossless', sa.Boolean(), nullable=False),
    sa.Column('frames', sa.Integer(), nullable=False, comment='> 1 for animations; first is hashed'),
    sa.Column('orientation', sa.Integer(), nullable=False, comment='EXIF orientation, 1 = upright'),
    sa.Column('taken_at', sa.String(length=32), nullable=True, comment='EXIF date, ISO'),
    sa.Column('camera_make', sa.Text(), nullable=True),
    sa.Column('camera_model', sa.Text(), nullable=True),
    sa.Column('exif_tags', sa.Integer(), nullable=False, comment='how many EXIF tags it carries'),
    sa.Column('hash_size', sa.Integer(), nullable=False, comment='8 (64-bit) or 16 (256-bit)'),
    sa.Column('phash', sa.LargeBinary(), nullable=False),
    sa.Column('dhash', sa.LargeBinary(), nullable=False),
    sa.Column('ahash', sa.LargeBinary(), nullable=False),
    sa.Column('whash', sa.LargeBinary(), nullable=False),
    sa.Column('sharpness', sa.Float(), nullable=False),
    sa.Column('low_information', sa.Boolean(), nullable=False, comment='near-uniform picture'),
    sa.Column('colour', sa.LargeBinary(), nullable=False, comment='4x4 RGB mean grid'),
    sa.Column('thumb', sa.LargeBinary(), nullable=False, comment='32x32 gray, for SSIM'),
    sa.Column('indexed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['root_id'], ['roots.id'], name=op.f('fk_images_root_id_roots'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_images')),
    sa.UniqueConstraint('root_id', 'relpath', name=op.f('uq_images_root_id')),
    comment='One row per indexed image file: identity, metadata, hashes, signals'
    )
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.create_index('ix_images_content_hash', ['content_hash'], unique=False)
        batch_op.create_index('ix_images_root_status', ['root_id', 'status'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('root_id', sa.Integer(), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False, comment='running, done, interrupted'),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True, comment='JSON summary'),
    sa.ForeignKeyConstraint(['root_id'], ['roots.id'], name=op.f('fk_runs_root_id_roots'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    comment='Index runs: a lock against concurrent writers, and history'
    )


def downgrade() -> None:
    op.drop_table('runs')
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index('ix_images_root_status')
        batch_op.drop_index('ix_images_content_hash')

    op.drop_table('images')
    op.drop_table('failures')
    op.drop_table('settings')
    op.drop_table('roots')
