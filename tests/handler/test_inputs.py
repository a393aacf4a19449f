"""Request parsing: the three accepted forms, the preview flag, and clear errors for everything else."""

import base64
import json

import pytest

from handler.inputs import RequestError, TargetError, parse_request, parse_target, read_request

PNG = b"\x89PNG\r\n\x1a\n-rest-of-a-png"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "row",
    [
        {"body": bytearray(PNG)},  # raw body
        {"data": PNG},  # multipart field "data"
        {"body": {"image": b64(PNG)}},  # JSON, decoded by TorchServe
        {"body": {"image": "data:image/png;base64," + b64(PNG)}},
        {"body": json.dumps({"image": b64(PNG)}).encode()},  # JSON TorchServe left undecoded
        {"body": "data:image/png;base64," + b64(PNG)},  # a text body holding a data: URL
    ],
    ids=["raw", "multipart", "json", "json-data-url", "json-bytes", "text-data-url"],
)
def test_each_form_yields_the_image_bytes(row):
    assert parse_request(row) == (PNG, False)


@pytest.mark.parametrize(
    "row",
    [
        {"body": PNG, "preview": b"1"},
        {"body": PNG, "preview": "true"},
        {"body": {"image": b64(PNG), "preview": True}},
        {"body": {"image": b64(PNG)}, "preview": b"yes"},
    ],
)
def test_preview_flag_from_query_or_json(row):
    assert parse_request(row) == (PNG, True)


def test_preview_off_values():
    assert parse_request({"body": PNG, "preview": b"0"})[1] is False
    assert parse_request({"body": {"image": b64(PNG), "preview": False}})[1] is False


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({}, "empty request"),
        ({"body": b""}, "empty request"),
        ({"body": {}}, '"image" field'),
        ({"body": {"img": b64(PNG)}}, '"image" field'),
        ({"body": {"image": 42}}, '"image" field'),
        ({"body": {"image": "@@not base64@@"}}, "not valid base64"),
        ({"body": {"image": "data:image/png," + b64(PNG)}}, "base64-encoded"),
        ({"body": b'{"image": '}, "invalid JSON"),
        ({"body": b"[1, 2]"}, "must be an object"),
        ({"body": [{"image": b64(PNG)}]}, "one image per request"),
        ({"body": 5}, "must be an object"),  # JSON scalars, decoded by TorchServe
        ({"body": 5.5}, "must be an object"),
        ({"body": 0}, "must be an object"),
        ({"body": True}, "must be an object"),
        ({"file": PNG}, 'no field "data" \\(it has file\\)'),  # a misnamed multipart field
        ({"body": None}, "empty request"),  # JSON null
    ],
    ids=["nothing", "empty", "empty-json", "wrong-field", "wrong-type", "bad-b64", "url-not-b64", "bad-json",
         "json-array", "list", "json-int", "json-float", "json-zero", "json-bool", "misnamed-field", "json-null"],
)  # fmt: skip
def test_bad_requests_get_a_clear_message(row, message):
    with pytest.raises(RequestError, match=message):
        parse_request(row)


# KServe (`service_envelope=kserve`): TorchServe's envelope hands the handler the instances of {"instances": [...]}
# as its rows, so each instance is one of these shapes instead of a request row.
@pytest.mark.parametrize(
    "instance",
    [
        b64(PNG),  # a bare base64 string
        "data:image/png;base64," + b64(PNG),
        {"data": b64(PNG)},  # TorchServe's KServe examples
        {"image": b64(PNG)},  # the same object as our JSON requests
        {"image": "data:image/png;base64," + b64(PNG)},
    ],
    ids=["bare-base64", "bare-data-url", "data-field", "image-field", "image-data-url"],
)
def test_kserve_instances_yield_the_image_bytes(instance):
    assert parse_request(instance) == (PNG, False)


def test_kserve_instances_can_ask_for_the_preview():
    assert parse_request({"image": b64(PNG), "preview": True}) == (PNG, True)
    assert parse_request({"data": b64(PNG), "preview": "1"}) == (PNG, True)


def test_a_text_body_holding_base64_is_decoded():  # what TorchServe makes of a text/plain body
    assert parse_request({"body": b64(PNG)}) == (PNG, False)


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        (42, "each instance"),
        (None, "each instance"),
        ([b64(PNG)], "each instance"),
        ("", "empty request"),
        ("@@not base64@@", "not valid base64"),
        ({"image": "@@not base64@@"}, "not valid base64"),
    ],
    ids=["number", "null", "list", "empty-string", "bad-base64", "image-bad-base64"],
)
def test_bad_kserve_instances_get_a_clear_message(instance, message):
    with pytest.raises(RequestError, match=message):
        parse_request(instance)


@pytest.mark.parametrize("opening", [b"[", b'{"a":'], ids=["lists", "objects"])
def test_json_nested_too_deeply_is_a_request_error(opening):
    """200,000 levels make json.loads raise RecursionError, which is not a JSONDecodeError."""
    closing = b"]" if opening == b"[" else b"}"
    with pytest.raises(RequestError, match="nested too deeply"):
        parse_request({"body": opening * 200_000 + closing * 200_000})


@pytest.mark.parametrize(
    ("value", "target"), [(None, None), ("", None), (3, 3), (0, 0), ("7", 7), (b" 9 ", 9), (2.0, 2)]
)
def test_explanation_targets(value, target):
    assert parse_target(value) == target


@pytest.mark.parametrize("value", [10, -1, 3.5, True, "x", "03", "١", b"12", [3], {}, float("nan")])
def test_bad_explanation_targets(value):
    with pytest.raises(TargetError, match="target must be a digit 0-9"):
        parse_target(value)


def test_the_target_comes_from_json_or_a_form_field():
    assert read_request({"body": {"image": b64(PNG), "target": 4}}).target == 4
    assert read_request({"body": json.dumps({"image": b64(PNG), "target": "4"}).encode()}).target == "4"
    assert read_request({"data": PNG, "target": b"6"}).target == b"6"
    assert read_request({"body": PNG}).target is None
