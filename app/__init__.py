"""The application layer: the use cases the pages and the JSON API call (predict and record, label, explain, ...),
between the pages (ui/) and the services (serving/ for TorchServe, db/ for PostgreSQL)."""
