"""PostgreSQL: the schema, the store (pool + queries) and the private embedded server."""
