"""The TorchServe handler in-process: a real ts Context, the model directory of a real .mar, real PNGs; no server."""

import base64
import io
import json
import math
import sys
import zipfile
from typing import ClassVar

import pytest
from PIL import Image
from ts.context import Context, RequestProcessor

from handler.mnist_handler import MNISTDigitHandler
from tests.conftest import blank_png


class RecordingMetrics:
    """Stands in for TorchServe's metrics cache (the handler only records timings in it)."""

    def __init__(self):
        self.times = []

    def add_time(self, name, value, idx=None, unit="ms"):
        self.times.append((name, value))


@pytest.fixture(scope="module")
def handler(model_store, tmp_path_factory):
    return load_handler(model_store / "mnist.mar", tmp_path_factory.mktemp("model_dir"), batch_size=8)


def load_handler(archive_path, model_dir, *, batch_size: int):
    """The handler initialised from a real .mar with a real TorchServe Context, as a worker does; (handler, context)."""
    with zipfile.ZipFile(archive_path) as archive:
        archive.extractall(model_dir)
    manifest = json.loads((model_dir / "MAR-INF" / "MANIFEST.json").read_text())
    context = Context(
        "mnist", str(model_dir), manifest, batch_size=batch_size, gpu=None, mms_version="0.12.0", model_yaml_config={}
    )
    context.metrics = RecordingMetrics()
    instance = MNISTDigitHandler()
    sys.path.insert(0, str(model_dir))  # TorchServe's worker imports model.py from the model directory the same way
    try:
        instance.initialize(context)
    finally:
        sys.path.remove(str(model_dir))
        sys.modules.pop("model", None)
    return instance, context


def handle(handler_and_context, rows, headers=None):
    instance, context = handler_and_context
    context.request_processor = [RequestProcessor(dict(headers or {})) for _ in rows]
    context.request_ids = {i: f"req-{i}" for i in range(len(rows))}
    answers = instance.handle(rows, context)
    statuses = [processor.get_response_status_code() for processor in context.request_processor]
    return answers, statuses


def test_answers_digit_confidence_probabilities_and_version(handler, canvas_pngs):
    png, label, _ = next(item for item in canvas_pngs if item[2] == "transparent")
    (answer,), (status,) = handle(handler, [{"body": bytearray(png)}])
    assert status == 200
    assert answer["digit"] == label
    assert len(answer["probabilities"]) == 10
    assert math.isclose(sum(answer["probabilities"]), 1.0, abs_tol=1e-5)
    assert answer["confidence"] == max(answer["probabilities"])
    assert answer["model_name"] == "mnist" and answer["model_version"] == "1.0"
    assert "preview" not in answer


def test_preview_is_the_28x28_input(handler, canvas_pngs):
    png = canvas_pngs[0][0]
    (answer,), _ = handle(handler, [{"body": png, "preview": b"1"}])
    preview = Image.open(io.BytesIO(base64.b64decode(answer["preview"])))
    assert preview.format == "PNG" and preview.size == (28, 28)
    (answer,), _ = handle(handler, [{"body": png}], headers={"x-preview": "true"})
    assert "preview" in answer


def test_a_batch_of_three_forms_reads_the_canvas_digits(handler, canvas_pngs):
    rows, labels = [], []
    for index, (png, label, _) in enumerate(canvas_pngs[:24]):
        form = index % 3
        if form == 0:
            rows.append({"body": bytearray(png)})
        elif form == 1:
            rows.append({"data": png})
        else:
            rows.append({"body": {"image": base64.b64encode(png).decode()}})
        labels.append(label)
    answers, statuses = handle(handler, rows)
    assert statuses == [200] * len(rows)
    correct = sum(answer["digit"] == label for answer, label in zip(answers, labels, strict=True))
    assert correct >= len(rows) - 1  # 24 canvases; the model reads >= 97% of such drawings


def test_bad_items_get_their_own_status_and_batch_mates_succeed(handler, canvas_pngs):
    good = canvas_pngs[1][0]
    bomb = io.BytesIO()
    Image.new("1", (5000, 5000)).save(bomb, format="PNG")
    rows = [
        {"body": good},
        {"body": blank_png()},
        {"body": b"not an image"},
        {"body": bomb.getvalue()},
        {"body": {"picture": "x"}},
        {"body": good},
    ]
    answers, statuses = handle(handler, rows)
    assert statuses == [200, 422, 400, 413, 400, 200]
    assert answers[0]["digit"] == answers[5]["digit"] == canvas_pngs[1][1]
    for answer, status in zip(answers[1:5], statuses[1:5], strict=True):
        assert answer["status"] == status and answer["error"]


class Hostile:
    """Bytes that make the handler's preparation raise an unforeseen exception (stands in for a parser bug)."""

    KINDS: ClassVar = {
        b"raise RecursionError": RecursionError("maximum recursion depth exceeded"),
        b"raise MemoryError": MemoryError(),
        b"raise ZeroDivisionError": ZeroDivisionError("division by zero"),
        b"raise KeyError": KeyError("width"),
        b"raise RuntimeError": RuntimeError("worker state"),
    }

    def __init__(self, prepare):
        self.prepare = prepare

    def __call__(self, data: bytes):
        if data in self.KINDS:
            raise self.KINDS[data]
        return self.prepare(data)


def test_an_unexpected_failure_of_one_item_is_its_own_400_and_batch_mates_succeed(handler, canvas_pngs, monkeypatch):
    """Any exception while reading or preparing one request fails that request alone (before, TorchServe answered
    503 to its whole batch): a real deeply nested JSON body, and five other kinds of unexpected exceptions."""
    import handler.mnist_handler as module

    monkeypatch.setattr(module, "prepare", Hostile(module.prepare))
    good, label = canvas_pngs[1][0], canvas_pngs[1][1]
    hostile = [b"[" * 200_000 + b"]" * 200_000, *Hostile.KINDS]
    rows = [{"body": good}] + [{"body": data} for data in hostile] + [{"body": good}]
    answers, statuses = handle(handler, rows)
    assert statuses == [200] + [400] * len(hostile) + [200]
    assert answers[0]["digit"] == answers[-1]["digit"] == label
    assert "nested too deeply" in answers[1]["error"]
    for answer, kind in zip(answers[2:-1], ["RecursionError", "MemoryError", "ZeroDivisionError", "KeyError",
                                             "RuntimeError"], strict=True):  # fmt: skip
        assert answer == {"error": f"the request could not be read ({kind})", "status": 400}


def test_a_batch_of_only_bad_items(handler):
    answers, statuses = handle(handler, [{"body": b""}, {"body": blank_png()}])
    assert statuses == [400, 422]
    assert "empty" in answers[0]["error"] and "blank" in answers[1]["error"]


def test_messages_that_echo_non_ascii_request_content_are_ascii_and_bounded(handler, canvas_pngs):
    """TorchServe's worker frames the status message by its length in characters: anything beyond ASCII in it broke
    the frame and killed the worker with its whole batch (issue #20 N3). The message is escaped and cut instead."""
    good = canvas_pngs[1][0]
    rows = [{"body": good}, {"dätä": good}, {"body": good}, {"✍️" * 400: good}]
    answers, statuses = handle(handler, rows)
    assert statuses == [200, 400, 200, 400]
    processors = handler[1].request_processor
    for index in (1, 3):
        message = processors[index].get_response_status_phrase()
        assert message == answers[index]["error"] and message.isascii() and len(message) <= 300, message
    assert "d\\xe4t\\xe4" in answers[1]["error"]
    assert answers[3]["error"].endswith("...")


def test_safe_message_escapes_and_cuts():
    from handler.mnist_handler import safe_message

    assert safe_message("target must be a digit 0-9, not '٣'") == "target must be a digit 0-9, not '\\u0663'"
    assert safe_message("a\nb\x00") == "a\\nb\\x00"
    assert len(safe_message("é" * 1000)) == 300
