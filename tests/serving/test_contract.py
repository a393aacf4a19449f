"""One contract, two implementations, for the services the app reaches besides its tables (those are
tests/db/test_contract.py's): TorchServe's inference API (app.ports.ModelServer), its management API
(app.ports.VersionControl), the remembered default (serving.versions.RememberedDefault) and the bundle that page tests
get (FakeServices). Every test runs against the real one (the session's TorchServe; PostgreSQL) and the stand-in of
tests/support/fakes.py, so the stand-ins cannot drift from what the product does.

The stand-ins are scripted (which digit a drawing reads as) and the real model is not: these tests assert what every
answer must be (its shape, its version, its errors), never which digit the model sees."""

from __future__ import annotations

import io
import json
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from PIL import Image

from app.context import App, create_app
from app.ports import ModelServer, VersionControl
from db.admin import AdminStore
from db.defaults import DefaultVersions
from db.journal import Journal
from db.numbers import NumberStore
from db.pool import SCHEMA_FILE, open_pool
from db.predictions import PredictionStore
from db.review import ReviewStore
from records.errors import ManagementError, ModelUnavailable
from records.predictions import Prediction
from serving.inference import NOT_ANSWERING, Predictor
from serving.management import ModelManager
from serving.versions import RememberedDefault
from settings import Settings
from tests.conftest import free_port, fresh_database
from tests.handler.test_numbers import drawing, one, seven, zero
from tests.support.fakes import (
    FakeAdminStore,
    FakeDefaults,
    FakeNumberStore,
    FakePredictionStore,
    FakePredictor,
    FakeReviewStore,
    FakeServices,
    FakeVersionControl,
    fake_app,
)

pytestmark = pytest.mark.asyncio

# the real side needs the session's TorchServe (integration); the stand-in needs nothing
WITH_TORCHSERVE = [pytest.param("torchserve", marks=pytest.mark.integration), "stand-in"]
UNKNOWN = "9.9"  # a version no server loads

SEVEN = drawing(seven(300))
NUMBER = drawing(one(150), seven(300), zero(480))  # 840x280, as the number slate sends it


@dataclass
class Served:
    """One model server's two APIs, as the app holds them."""

    predictor: ModelServer
    control: VersionControl


@pytest_asyncio.fixture(params=WITH_TORCHSERVE)
async def served(request) -> AsyncIterator[Served]:
    """The clients of the session's TorchServe, or a FakePredictor and the FakeVersionControl over it (as fake_app
    wires them). TorchServe's default is put back afterwards: the other tests of the session share it."""
    if request.param == "stand-in":
        predictor = FakePredictor()
        yield Served(predictor, FakeVersionControl(predictor))
        return
    torchserve = request.getfixturevalue("torchserve")
    predictor = Predictor(inference_url=torchserve.endpoints.inference, key_file=torchserve.key_file, timeout=60)
    control = ModelManager(management_url=torchserve.endpoints.management, key_file=torchserve.key_file)
    shipped = await control.default_version()
    assert shipped is not None
    try:
        yield Served(predictor, control)
    finally:
        if await control.default_version() != shipped:
            await control.set_default(shipped)
        await predictor.close()
        await control.close()


@pytest_asyncio.fixture(params=["nothing listening", "stand-in"])
async def unreachable(request, tmp_path) -> AsyncIterator[ModelServer]:
    """A model server that does not answer: a Predictor (with a valid key file) for a port where nothing listens, or
    the stand-in told it is down."""
    if request.param == "stand-in":
        yield FakePredictor(down=True)
        return
    key_file = tmp_path / "key_file.json"
    key_file.write_text(json.dumps({kind: {"key": "k"} for kind in ("inference", "management", "API")}))
    predictor = Predictor(inference_url=f"http://127.0.0.1:{free_port()}", key_file=key_file)
    yield predictor
    await predictor.close()


@pytest.fixture(scope="module")
def db_url(server_url) -> Iterator[str]:
    """A database of this module's own, with the schema applied."""
    with fresh_database(server_url, prefix="test_serving_contract") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA_FILE.read_text())
        yield url


@pytest_asyncio.fixture(params=["postgres", "stand-in"])
async def remembered(request) -> AsyncIterator[RememberedDefault]:
    if request.param == "stand-in":
        yield FakeDefaults()
        return
    pool = await open_pool(request.getfixturevalue("db_url"), max_size=2)
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM model_defaults")
    try:
        yield DefaultVersions(pool)
    finally:
        await pool.close()


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def assert_probabilities(probabilities: list[float]) -> None:
    assert len(probabilities) == 10 and all(0.0 <= p <= 1.0 for p in probabilities)
    assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-3)


def assert_preview(preview_png: bytes | None) -> None:
    """None, or the 28x28 image the model saw, as a PNG (the page shows it and lays the heat map over it)."""
    if preview_png is not None:
        with Image.open(io.BytesIO(preview_png)) as preview:
            assert (preview.format, preview.size) == ("PNG", (28, 28))


def assert_prediction(prediction: Prediction, *, version: str) -> None:
    """What the page and the stored row rely on in every answer to a drawing."""
    assert (prediction.model_name, prediction.model_version) == ("mnist", version)
    assert_probabilities(prediction.probabilities)
    assert prediction.closest_digit in range(10)
    assert prediction.closest_digit == prediction.probabilities.index(max(prediction.probabilities))
    assert 0.0 <= prediction.confidence <= 1.0
    assert math.isclose(prediction.confidence, prediction.probabilities[prediction.closest_digit], abs_tol=1e-6)
    assert prediction.runner_up != prediction.closest_digit
    if prediction.not_a_digit:  # an answer, not an error: no digit, a reason, and the closest digit
        assert prediction.digit is None and prediction.reason
    else:
        assert prediction.digit == prediction.closest_digit and prediction.reason is None
    assert_preview(prediction.preview_png)
    assert prediction.latency_ms >= 0


async def test_a_prediction_is_one_digit_of_ten_probabilities_by_the_default_version(served):
    default = await served.control.default_version()
    assert default is not None
    assert_prediction(await served.predictor.predict(SEVEN), version=default)


async def test_every_loaded_version_answers_as_itself_and_an_unknown_one_is_unavailable(served):
    for version in [v.version for v in await served.control.versions()]:
        assert_prediction(await served.predictor.predict(SEVEN, version=version), version=version)
        assert (await served.predictor.read_number(NUMBER, version=version)).model_version == version
    with pytest.raises(ModelUnavailable):
        await served.predictor.predict(SEVEN, version=UNKNOWN)
    with pytest.raises(ModelUnavailable):
        await served.predictor.read_number(NUMBER, version=UNKNOWN)
    with pytest.raises(ModelUnavailable):
        await served.predictor.explain_all(SEVEN, version=UNKNOWN)


async def test_a_number_is_its_digits_left_to_right_each_boxed_in_the_drawing(served):
    reading = await served.predictor.read_number(NUMBER)
    assert (reading.model_name, reading.model_version) == ("mnist", await served.control.default_version())
    assert reading.digits and reading.latency_ms >= 0
    if reading.not_a_digit:
        assert reading.number is None and reading.reason
    else:
        assert reading.number == "".join(str(digit.digit) for digit in reading.digits) and reading.reason is None
    width, height = Image.open(io.BytesIO(NUMBER)).size
    for digit in reading.digits:
        assert digit.digit in range(10) and 0.0 <= digit.confidence <= 1.0
        assert_probabilities(digit.probabilities)
        left, top, right, bottom = digit.box
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        assert_preview(digit.preview_png)
    lefts = [digit.box[0] for digit in reading.digits]
    assert lefts == sorted(lefts)


async def test_all_ten_maps_come_in_one_answer(served):
    """One call: on the real server a pass costs about six explanations."""
    explained = await served.predictor.explain_all(SEVEN)
    default = await served.control.default_version()
    assert default is not None
    assert_prediction(explained.prediction, version=default)
    assert len(explained.by_target) == 10
    assert all(len(m) == 28 and all(len(row) == 28 for row in m) for m in explained.by_target)
    prediction = explained.prediction
    assert explained.by_target[prediction.closest_digit] != explained.by_target[prediction.runner_up]
    target = explained.for_target(3)
    assert (target.target, target.attributions, target.prediction) == (3, explained.by_target[3], prediction)
    box = explained.field_box
    assert box.left < box.right and box.top < box.bottom
    assert isinstance(explained.method, str) and explained.method


async def test_a_server_that_does_not_answer_is_unavailable_with_the_pages_message(unreachable):
    for ask in (unreachable.predict, unreachable.read_number, unreachable.explain_all):
        with pytest.raises(ModelUnavailable) as caught:
            await ask(SEVEN)
        assert str(caught.value) == NOT_ANSWERING


async def test_versions_come_oldest_first_with_the_default_marked(served):
    control = served.control
    assert control.model_name == "mnist"
    versions = await control.versions()
    names = [v.version for v in versions]
    assert names and names == sorted(names, key=version_key)
    default = await control.default_version()
    assert [v.version for v in versions if v.is_default] == [default]
    assert all(v.ready and v.archive.endswith(".mar") and v.batch_size >= 1 for v in versions)
    assert [v.version for v in await control.require(names[-1])] == names


async def test_set_default_switches_what_answers_and_an_unknown_version_is_refused(served):
    control, predictor = served.control, served.predictor
    first = await control.default_version()
    other = next(v.version for v in await control.versions() if v.version != first)
    await control.set_default(other)
    assert await control.default_version() == other
    assert [v.version for v in await control.versions() if v.is_default] == [other]
    assert (await predictor.predict(SEVEN)).model_version == other
    for refused in (control.require, control.set_default):
        with pytest.raises(ManagementError, match=UNKNOWN):
            await refused(UNKNOWN)
    assert await control.default_version() == other  # a refused switch changes nothing
    await control.set_default(str(first))
    assert (await predictor.predict(SEVEN)).model_version == first


async def test_the_remembered_default_is_the_last_one_chosen_per_model(remembered):
    assert await remembered.chosen("mnist") is None
    await remembered.remember("mnist", "2.0", by="operator")
    await remembered.remember("other", "7.0", by="operator")
    assert await remembered.chosen("mnist") == "2.0"
    await remembered.remember("mnist", "1.0", by="another operator")
    assert (await remembered.chosen("mnist"), await remembered.chosen("other")) == ("1.0", "7.0")


# Each FakeServices field: the real service create_app wires, and its stand-in
SERVICES = {
    "store": (PredictionStore, FakePredictionStore),
    "numbers": (NumberStore, FakeNumberStore),
    "admin": (AdminStore, FakeAdminStore),
    "review": (ReviewStore, FakeReviewStore),
    "predictor": (Predictor, FakePredictor),
    "control": (ModelManager, FakeVersionControl),
    "defaults": (DefaultVersions, FakeDefaults),
    "journal": (Journal, Journal),
}


def seams(app: App) -> dict[str, list[object]]:
    """Every place where the App's use cases hold a service, by the FakeServices field that stands in for it."""
    return {
        "store": [app.predictions.store, app.history.store, app.versions.store],
        "numbers": [app.numbers.store, app.history.numbers, app.predictions.number_store],
        "admin": [app.admin.store],
        "review": [app.review.store],
        "predictor": [app.predictions.server, app.numbers.server, getattr(app.explainer.explain_all, "__self__", None)],
        "control": [app.versions.control],
        "defaults": [app.versions.defaults],
        "journal": [app.predictions.journal],
    }


@pytest_asyncio.fixture(params=WITH_TORCHSERVE)
async def wired(request, tmp_path: Path) -> AsyncIterator[tuple[App, FakeServices | None]]:
    """The App create_app builds on the session's TorchServe and PostgreSQL, or the one fake_app builds on the
    stand-ins (with the FakeServices it returns)."""
    if request.param == "stand-in":
        settings = Settings(_env_file=None, storage_secret="s" * 16, admin_password="a" * 16,
                            database_url="postgresql://nowhere.invalid/none")  # fmt: skip
        yield fake_app(settings, tmp_path)
        return
    torchserve = request.getfixturevalue("torchserve")
    settings = Settings(
        _env_file=None, storage_secret="s" * 16, admin_password="a" * 16,
        database_url=request.getfixturevalue("db_url"), journal_dir=tmp_path, ts_key_file=torchserve.key_file,
        ts_inference_port=int(torchserve.endpoints.inference.rsplit(":", 1)[1]),
        ts_management_port=int(torchserve.endpoints.management.rsplit(":", 1)[1]), ts_properties={},
    )  # fmt: skip
    app = await create_app(settings)
    shipped = await app.versions.control.default_version()
    try:
        yield app, None
    finally:
        if await app.versions.control.default_version() != shipped:
            await app.versions.control.set_default(str(shipped))
        await app.close()


async def test_fake_app_wires_one_stand_in_wherever_create_app_wires_a_real_service(wired):
    app, services = wired
    real = services is None
    places = seams(app)
    assert places.keys() == {f.name for f in fields(FakeServices)} == SERVICES.keys()
    for name, held in places.items():
        assert len({id(service) for service in held}) == 1, f"{name}: one instance for every use case"
        assert type(held[0]) is SERVICES[name][0 if real else 1], name
        if services is not None:
            assert held[0] is getattr(services, name), f"FakeServices.{name} is the one the App uses"


async def test_the_wired_predictor_answers_by_the_wired_controls_default(wired):
    app, _ = wired
    control, server = app.versions.control, app.predictions.server
    other = next(v.version for v in await control.versions() if not v.is_default)
    await control.set_default(other)
    assert (await server.predict(SEVEN)).model_version == other
