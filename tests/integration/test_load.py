"""The short version of `make load`: a few users draw -> predict -> label for a few seconds against the whole
product started like `make run`; nothing fails and no answered prediction is missing from PostgreSQL."""

import asyncio

import pytest

from tools import load

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_short_load_has_no_errors_and_loses_no_row(model_store, canvas_pngs):
    drawings = [(png, label) for png, label, _ in canvas_pngs]
    with load.product(model_store) as (url, database_url):
        report = asyncio.run(load.run_load(url, database_url, drawings, users=4, seconds=8, think=0.05))
    assert report["errors"] == 0, report["error_samples"]
    assert report["lost_rows"] == 0, report["lost_samples"]
    assert report["rounds_completed"] >= 8 and report["predict"]["count"] >= report["rounds_completed"]


def test_the_load_refuses_a_non_loopback_target_and_unbounded_runs():
    with pytest.raises(ValueError, match="loopback only"):
        asyncio.run(load.run_load("http://10.0.0.1:8501", "", [], users=1, seconds=1, think=0))
    with pytest.raises(ValueError, match="256 users"):
        asyncio.run(load.run_load("http://127.0.0.1:8501", "", [], users=1000, seconds=1, think=0))
