"""PostgreSQL: the schema (init.sql), the pool, one store per table's concern (predictions, numbers, the admin
login, the default versions, the review queue), the journal that keeps writes while the database is down, and the
private embedded server. Imports only `settings`; it never imports serving."""
