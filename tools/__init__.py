"""Tools around the product, not tests and not part of it (nothing in the product imports them; the tests may, to try
them): the benchmarks (`make bench`, `bench-inputs`, `bench-hostile`; bench_uploads, bench_slowloris), the load
generator (`make load`), and what they share with the tests: the whole product started on free ports (stack.py),
hostile and malformed images (bad_inputs.py), a Chromium tab that drives the page (page_client.py)."""
