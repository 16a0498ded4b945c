"""column comments: images.content_hash is BLAKE3, images.status names what apply did

Why: the content hash moved from BLAKE2b to BLAKE3 (hashes.HASH_VERSION 3) and `apply` added
statuses (quarantined, trashed, deleted, linked), but the column comments that PostgreSQL keeps
in its catalogue still said BLAKE2b and "present or missing". Only the comments change; SQLite
keeps no comments, so there is nothing to do there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# (column, type, new comment, old comment)
COMMENTS = [
    ('content_hash', sa.LargeBinary(length=32), 'BLAKE3-256 of the bytes', 'BLAKE2b-256 of bytes'),
    (
        'status',
        sa.String(length=16),
        'present, missing, or what `apply` did: quarantined, linked...',
        'present or missing',
    ),
]


def _set_comments(new: bool) -> None:
    if not op.get_bind().dialect.supports_comments:
        return
    for column, type_, comment, old in COMMENTS:
        op.alter_column(
            'images',
            column,
            existing_type=type_,
            existing_nullable=False,
            comment=comment if new else old,
            existing_comment=old if new else comment,
        )


def upgrade() -> None:
    _set_comments(new=True)


def downgrade() -> None:
    _set_comments(new=False)
