"""The bad-input matrix against the real TorchServe: every malformed, hostile or mislabelled request gets its own 4xx
and a message that says what is wrong, the worker that read it keeps running, and in a batch the good requests beside
it still get their digits.

Two answers come from TorchServe's Java frontend before the handler runs, and are asserted as they are: a body over
`max_request_size` (413, no body) and a binary body sent with a form content type (500 ErrorDataDecoderException).
"""

import base64
import io
import itertools
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image, ImageDraw

from tests.conftest import blank_png
from tests.integration.conftest import workers
from tests.integration.test_torchserve_api import check_contract
from tools.bad_inputs import (
    animated,
    chunk_flood_png,
    comment_flood_jpeg,
    encode,
    metadata_bomb_png,
    pixel_bomb_png,
    short_header_png,
    text_bomb_png,
    with_coding,
)

pytestmark = pytest.mark.integration

PREDICT = "/predictions/mnist"


def stroke_png() -> bytes:
    """A 280x280 canvas with one vertical stroke: a valid drawing whose bytes can be cut short."""
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill=0, width=18)
    return encode(image)


DRAWING = stroke_png()
JPEG = encode(Image.open(io.BytesIO(DRAWING)), "JPEG")
BIG_PNG = encode(Image.new("RGBA", (4096, 4096), (255, 255, 255, 255)))
BIG_PROGRESSIVE = encode(Image.new("L", (2048, 2048), 200), "JPEG", progressive=True)
DEEP_LIST = b"[" * 200_000 + b"]" * 200_000  # json.loads raises RecursionError (a batch got 503 before)
DEEP_OBJECT = b'{"image":' * 100_000 + b"1" + b"}" * 100_000
B64 = base64.b64encode(DRAWING).decode()


@dataclass(frozen=True)
class Bad:
    request: dict  # keyword arguments of httpx.Client.post
    status: int
    message: str  # a fragment of the answer's "error"


def body(data: bytes, content_type: str = "image/png") -> dict:
    return {"content": data, "headers": {"Content-Type": content_type}}


def as_json(value) -> dict:
    return body(json.dumps(value).encode(), "application/json")


BAD = {
    "empty body": Bad(body(b""), 400, "empty request"),
    "non-image bytes": Bad(body(b"hello, this is not an image"), 400, "not an image"),
    "truncated PNG": Bad(body(DRAWING[: len(DRAWING) // 2]), 400, "corrupt image: image file is truncated"),
    "PNG header cut short": Bad(body(short_header_png()), 400, "corrupt image: Truncated IHDR chunk"),
    "1x1 image": Bad(body(blank_png(1, mode="L", color=0)), 422, "the drawing is blank"),
    "5000x5000 pixel bomb": Bad(body(pixel_bomb_png(5000)), 413, "image too large: a 5000x5000 PNG"),
    "20000x20000 pixel bomb": Bad(body(pixel_bomb_png(20000)), 413, "image too large: a 20000x20000 PNG"),
    # dearer than any drawing: refused from the headers, before the expensive steps (docs/model-card.md "Preprocessing")
    "4096x4096 RGBA PNG, 84 KB": Bad(body(BIG_PNG), 413, "image too large: a 4096x4096 PNG of 67,108,864 bytes"),
    "PNG of 300,000 chunks": Bad(body(chunk_flood_png(DRAWING)), 413, "more than 1024 PNG chunks"),
    "JPEG of 100,000 comments": Bad(body(comment_flood_jpeg(JPEG)), 413, "more than 64 JPEG segments"),
    "progressive JPEG 2048x2048": Bad(body(BIG_PROGRESSIVE), 413, "a 2048x2048 progressive JPEG"),
    "lossless JPEG": Bad(body(with_coding(JPEG, 0xC3)), 400, "unsupported JPEG coding"),
    "animated GIF": Bad(body(animated("GIF"), "image/gif"), 400, "unsupported image format GIF"),
    "animated PNG": Bad(body(animated("PNG")), 400, "animated images are not supported"),
    "blank canvas": Bad(body(blank_png()), 422, "the drawing is blank: draw a digit first"),
    "all-ink canvas": Bad(body(blank_png(color=(0, 0, 0, 255))), 422, "the drawing is blank: draw a digit first"),
    "JSON without image": Bad(as_json({"img": B64}), 400, 'JSON requests need an "image" field'),
    "JSON image not a string": Bad(as_json({"image": 7}), 400, 'JSON requests need an "image" field'),
    "JSON image empty": Bad(as_json({"image": ""}), 400, 'JSON requests need an "image" field'),
    "JSON list": Bad(as_json([{"image": B64}]), 400, "send one image per request"),
    "JSON number": Bad(as_json(5), 400, "JSON requests must be an object"),
    "JSON float": Bad(as_json(5.5), 400, "JSON requests must be an object"),
    "JSON true": Bad(as_json(True), 400, "JSON requests must be an object"),
    "JSON null": Bad(as_json(None), 400, "empty request"),
    "invalid JSON": Bad(body(b'{"image": ', "application/json"), 400, "invalid JSON body"),
    "invalid base64": Bad(as_json({"image": "@@not base64@@"}), 400, "not valid base64"),
    "base64 of text": Bad(as_json({"image": base64.b64encode(b"hello").decode()}), 400, "not an image"),
    "data URL not base64": Bad(as_json({"image": "data:image/png,abc"}), 400, "must be base64-encoded"),
    "data URL bad base64": Bad(as_json({"image": "data:image/png;base64,@@@"}), 400, "not valid base64"),
    "text body, bad data URL": Bad(body(b"data:image/png;base64,@@@", "text/plain"), 400, "not valid base64"),
    "text body, not base64": Bad(body(b"hello, a 7", "text/plain"), 400, "not valid base64"),
    "XML body": Bad(body(b"<digit>7</digit>", "application/xml"), 400, "not an image"),
    "form without data field": Bad(body(b"digit=7", "application/x-www-form-urlencoded"), 400, "it has digit"),
    "multipart without data field": Bad({"files": {"file": ("d.png", DRAWING, "image/png")}}, 400, "it has file"),
    "multipart type, no parts": Bad(body(DRAWING, "multipart/form-data; boundary=xyz"), 400, "empty request"),
    "JSON nested 200,000 deep": Bad(body(DEEP_LIST, "application/json"), 400, "nested too deeply"),
    "nested JSON as a PNG": Bad(body(DEEP_OBJECT), 400, "nested too deeply"),
}


@pytest.fixture(scope="module")
def serving(torchserve) -> set[tuple[str, int]]:
    """The (id, pid) of every worker before the first bad request of this module."""
    return {(worker["id"], worker["pid"]) for worker in workers(torchserve)}


def assert_still_serving(api: httpx.Client, torchserve, serving: set[tuple[str, int]]) -> None:
    """The same workers, all READY, and a good drawing still gets its digit."""
    now = workers(torchserve)
    assert {(worker["id"], worker["pid"]) for worker in now} == serving
    assert all(worker["status"] == "READY" for worker in now), now
    response = api.post(PREDICT, content=DRAWING, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == 1


def assert_refused(response: httpx.Response, bad: Bad) -> None:
    """Its own status, JSON {"error": <message for the user>, "status": <the same>}, no stack trace."""
    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert set(answer) == {"error", "status"} and answer["status"] == bad.status
    assert bad.message in answer["error"]
    assert "Traceback" not in response.text and len(answer["error"]) < 300


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_gets_its_own_4xx_and_message(api, torchserve, serving, case):
    assert_refused(api.post(PREDICT, **BAD[case].request), BAD[case])
    assert_still_serving(api, torchserve, serving)


@pytest.mark.parametrize("payload", [text_bomb_png(DRAWING), metadata_bomb_png(DRAWING)], ids=["zTXt", "zTXt+iCCP"])
def test_metadata_is_dropped_unread(api, torchserve, serving, payload):
    """Text and ICC chunks never reach Pillow (a 20 MB zTXt chunk was refused as corrupt after inflating 1 MB)."""
    response = api.post(PREDICT, **body(payload))
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == 1
    assert_still_serving(api, torchserve, serving)


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/octet-stream", "image/gif", "image/jpeg", "application/json"]
)
def test_a_png_under_another_content_type_is_still_read(api, content_type):
    """The handler goes by the bytes, not the label (TorchServe passes undecodable text/JSON bodies on as bytes)."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.post(PREDICT, content=DRAWING, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == 1


def test_body_over_max_request_size_is_refused_by_torchserve(api, torchserve, serving):
    """TorchServe's frontend answers 413 with an empty body (the status line says why); the handler never sees it."""
    limit = int(torchserve.properties["max_request_size"])
    for request in (
        body(DRAWING + b"\0" * (limit + 1 - len(DRAWING))),  # junk appended after IEND
        as_json({"image": base64.b64encode(b"\0" * limit).decode()}),
    ):
        response = api.post(PREDICT, **request)
        assert (response.status_code, response.reason_phrase) == (413, "Request Entity Too Large")
        assert response.content == b""
    assert_still_serving(api, torchserve, serving)


def test_binary_body_sent_as_a_form_is_a_frontend_500(api, torchserve, serving):
    """curl --data-binary without a Content-Type sends application/x-www-form-urlencoded; TorchServe 0.12's frontend
    parses such bodies as forms before any handler runs (no setting turns that off) and answers 500 to bytes that
    are not form encoding. Asserted as it is; README "Troubleshooting" tells users to add the header."""
    response = api.post(PREDICT, **body(DRAWING, "application/x-www-form-urlencoded"))
    assert response.status_code == 500
    assert response.json()["type"] == "ErrorDataDecoderException"
    assert_still_serving(api, torchserve, serving)


# PredictionTime metric lines in ts_log.log list the request ids (x-request-id) of each batch the worker ran.
BATCH_LINE = re.compile(r"PredictionTime\.Milliseconds:[\d.]+\|.*?#hostname:[^,]*,\d+,([0-9a-f,-]+)")


def batches(torchserve, request_ids: set[str], *, timeout: float = 10.0) -> list[set[str]]:
    """The batches the worker logged that hold any of request_ids, once every one of them has been logged."""
    log = torchserve.home / "logs" / "ts_log.log"
    deadline = time.monotonic() + timeout
    while True:
        found = [set(match.group(1).strip(",").split(",")) for match in BATCH_LINE.finditer(log.read_text())]
        found = [batch for batch in found if batch & request_ids]
        if request_ids <= set().union(*found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_bad_requests_in_a_batch_leave_the_good_ones_alone(api, torchserve, serving, canvas_pngs):
    """Every bad case of the matrix between two good drawings, 16 at a time (the model batches up to 16 within
    2 ms): each bad one gets its own answer, every good one the digit it gets alone, and bad and good did share
    batches."""
    plan = []  # (request, the Bad it is or the digit the drawing gets when sent alone)
    drawings = itertools.cycle(png for png, _, _ in canvas_pngs)
    for bad in BAD.values():
        for png in (next(drawings), next(drawings)):
            alone = api.post(PREDICT, **body(png))
            assert alone.status_code == 200, alone.text
            plan.append((body(png), alone.json()["digit"]))
        plan.insert(len(plan) - 1, (bad.request, bad))

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda item: api.post(PREDICT, **item[0]), plan))

    for response, (_, expected) in zip(responses, plan, strict=True):
        if isinstance(expected, Bad):
            assert_refused(response, expected)
        else:
            assert response.status_code == 200, response.text
            check_contract(response.json(), label=expected)  # its own answer, not a batch-mate's
    assert_still_serving(api, torchserve, serving)
    good_ids = {r.headers["x-request-id"] for r, (_, e) in zip(responses, plan, strict=True) if not isinstance(e, Bad)}
    bad_ids = {r.headers["x-request-id"] for r, (_, e) in zip(responses, plan, strict=True) if isinstance(e, Bad)}
    mixed = [batch for batch in batches(torchserve, good_ids | bad_ids) if batch & good_ids and batch & bad_ids]
    assert mixed, "no batch held both a good and a bad request: the test did not exercise batching"


# Request content echoed in an error message, beyond ASCII: the worker used to frame the message by its length in
# characters, the frontend read past it and the whole batch failed with "Worker died" (docs/security.md N3).
NON_ASCII = {
    "explanation target in Arabic-Indic digits": (
        "/explanations/mnist", as_json({"image": B64, "target": "٣"}), 400, "target must be a digit 0-9"),
    "a long non-ASCII target": (
        "/explanations/mnist", as_json({"image": B64, "target": "٣" * 5000}), 400, "target must be a digit 0-9"),
    "multipart field named dätä": (
        PREDICT, {"files": {"dätä": ("d.png", DRAWING, "image/png")}}, 400, 'no field "data"'),
    "form field named with an emoji": (
        PREDICT, body("✍️=7".encode(), "application/x-www-form-urlencoded"), 400, 'no field "data"'),
}  # fmt: skip


def test_non_ascii_in_error_messages_never_hurts_the_worker_or_its_batch(api, torchserve, serving, canvas_pngs):
    """Each non-ASCII case, 4 times, among 32 good drawings sent 16 at a time: every bad request gets its own 400
    with an ASCII message, every good one its own digit, the same workers stay READY, and they shared batches."""
    drawings = [png for png, _, _ in canvas_pngs[:32]]
    expected = {png: api.post(PREDICT, **body(png)).json()["digit"] for png in drawings}
    plan = [(PREDICT, body(png), png) for png in drawings]
    for index, case in enumerate(list(NON_ASCII.values()) * 4):
        plan.insert(2 * index + 1, case)
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda item: api.post(item[0], **item[1]), plan))
    for response, item in zip(responses, plan, strict=True):
        if isinstance(item[2], bytes):
            assert response.status_code == 200, response.text
            assert response.json()["digit"] == expected[item[2]]
            continue
        _, _, status, message = item
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert message in error and error.isascii() and len(error) <= 300, error
        assert response.reason_phrase.isascii()
    assert_still_serving(api, torchserve, serving)
    ids = [r.headers["x-request-id"] for r in responses]
    bad_ids = {i for i, item in zip(ids, plan, strict=True) if not isinstance(item[2], bytes)}
    mixed = [batch for batch in batches(torchserve, set(ids)) if batch & bad_ids and batch - bad_ids]
    assert mixed, "no batch held both a good and a non-ASCII request: the test did not exercise batching"
