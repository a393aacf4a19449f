"""Running the product: the process supervisor behind `make run`, and starters for TorchServe (and Postgres)."""
