"""inner picture and fine hash: images.inner_picture and images.fine_hash (issue 16)

Why: a phone screenshot shows a picture at about half its width inside the app's chrome, and
its whole-frame hashes describe the chrome, not the picture; the index now finds the picture
inside flat surroundings and stores its box and hashes (`inner_picture`), so the report can
match it with the picture itself, and tell screenshots of different pictures apart. Pages of
one document template and product shots on white have whole-frame hashes as close as a
re-saved copy's; `fine_hash` holds finer hashes that tell such look-alike layouts apart.
Nullable: rows indexed before keep NULL until `dedupdb index --rehash`.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 23:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inner_picture', sa.LargeBinary(), nullable=True, comment='a picture shown inside this one: its box and hashes'))
        batch_op.add_column(sa.Column('fine_hash', sa.LargeBinary(), nullable=True, comment='finer hashes for look-alike layouts'))


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('fine_hash')
        batch_op.drop_column('inner_picture')
