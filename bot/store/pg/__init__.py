"""The story on PostgreSQL: the same log, handlers and projections as SQLite, over asyncpg."""
