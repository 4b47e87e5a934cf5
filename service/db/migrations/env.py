"""Alembic's entry point: migrate the database named in the Alembic config."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from service.db import Base

config = context.config
with engine_from_config(
    config.get_section(config.config_ini_section) or {},
    prefix="sqlalchemy.",
    poolclass=pool.NullPool,
).connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
