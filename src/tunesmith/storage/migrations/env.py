"""Alembic environment: runs on the connection tunesmith hands it (no alembic.ini, no URL of its own)."""

from alembic import context

from tunesmith.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
