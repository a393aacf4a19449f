"""An inference client for the session's TorchServe, and its workers as the management API lists them."""

import httpx
import pytest


@pytest.fixture(scope="module")
def api(torchserve):
    headers = {"Authorization": f"Bearer {torchserve.keys()['inference']}"}
    with httpx.Client(base_url=torchserve.endpoints.inference, headers=headers, timeout=30) as client:
        yield client


def workers(torchserve) -> list[dict]:
    """Every worker of every loaded version of `mnist` (id, pid, status, ...)."""
    headers = {"Authorization": f"Bearer {torchserve.keys()['management']}"}
    response = httpx.get(f"{torchserve.endpoints.management}/models/mnist", headers=headers, timeout=10)
    response.raise_for_status()
    return [worker for version in response.json() for worker in version["workers"]]
