"""Alembic environment shared by the three services.

Migrations run programmatically (`Database.migrate`) on a connection whose search_path is the
service's schema, so the scripts create unqualified tables and `alembic_version` lands in that
schema too. Each service keeps its own revisions in `services/<name>/migrations/`.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
