"""Alembic environment: used by dedupdb's store on open, and by developers via alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from dedupdb.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: batch mode recreates tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from dedupdb.store import database_url

    engine = create_engine(database_url(context.get_x_argument(as_dictionary=True).get("db")))
    with engine.begin() as conn:
        _run(conn)
