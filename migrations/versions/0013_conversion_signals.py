"""conversion signals: images.jpeg_quant and images.dct_sample, to tell a conversion

Why: a lossless file made from a JPEG (a PNG or TIFF export of a camera photo) holds the same
pixels at several times the bytes, and the keeper ranking preferred it for its format. The
index now stores each JPEG's luma quantization table (64 bytes, read from the header) and a
sample of each lossless picture's luma DCT coefficients (4 KB per grid offset, most textured
blocks); the report tests whether the lossless picture lies on a same-size JPEG's
quantization lattice, and then ranks the JPEG first. Nullable: rows indexed before keep NULL
(no conversion is proven for them) until `dedupdb index --rehash`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jpeg_quant', sa.LargeBinary(), nullable=True, comment="a JPEG's luma quantization table (64 steps)"))
        batch_op.add_column(sa.Column('dct_sample', sa.LargeBinary(), nullable=True, comment="a lossless picture's luma DCT sample"))


def downgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_column('dct_sample')
        batch_op.drop_column('jpeg_quant')
