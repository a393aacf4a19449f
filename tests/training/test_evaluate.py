"""`make eval`'s helpers that need no TorchServe (training/evaluate.py): which versions config.properties loads, and
the held-out UNIPEN figures. Through a live TorchServe: tests/integration/test_torchserve_api.py."""

import gzip
import json
from pathlib import Path

import pytest

from records.predictions import Prediction
from serving.endpoints import read_properties
from training import evaluate, unipen

ROOT = Path(__file__).resolve().parents[2]


def test_the_versions_evaluated_are_the_ones_loaded_not_every_one_configured():
    models = {"mnist": {"1.0": {"marName": "mnist.mar"}, "2.0": {"marName": "mnist-v2.0.mar"},
                        "4.0": {"marName": "mnist-v4.0.mar", "defaultVersion": True}}}  # fmt: skip
    properties = {"load_models": "mnist-v4.0.mar,mnist.mar", "models": json.dumps(models)}
    assert evaluate.configured_versions(properties) == ["1.0", "4.0"]  # 2.0 keeps its settings but is not loaded


def test_the_shipped_configuration_evaluates_every_loaded_version():
    properties = read_properties((ROOT / "config.properties").read_text())
    loaded = properties["load_models"].split(",")
    assert len(evaluate.configured_versions(properties)) == len(loaded)


def answer(digit: int | None) -> Prediction:
    probabilities = [0.0] * 10
    probabilities[digit if digit is not None else 0] = 1.0
    return Prediction(digit, 1.0, probabilities, "mnist", "4.0", None, 1.0, not_a_digit=digit is None)


def test_unipen_figures_per_style_and_digit_count_a_refusal_as_wrong():
    drawn = [(b"", 1, "f", "black_on_white"), (b"", 1, "f", "white_on_black"), (b"", 7, "f", "transparent"),
             (b"", 7, "f", "black_on_white")]  # fmt: skip
    report = evaluate.unipen_figures([answer(1), answer(7), answer(7), answer(None)], drawn)
    assert report["unipen_heldout"] == 0.5 and report["unipen_images"] == 4
    assert report["unipen_digit_1"] == 0.5 and report["unipen_digit_7"] == 0.5  # 1 -> 7 wrong; a refused 7 wrong
    assert report["unipen_black_on_white"] == 0.5 and report["unipen_transparent"] == 1.0
    assert "unipen_digit_0" not in report  # no 0s drawn: no figure, rather than a made-up one


def test_unipen_drawings_keep_only_the_files_named(tmp_path):
    held_out, other_held_out = "data/1a/syn/syn1/sjb-dig20.dat", unipen_validation_file()
    one = [[[500, 900], [505, 500], [510, 100]]]
    rows = [{"label": "1", "strokes": one, "contributor": "syn", "file": f} for f in (held_out, other_held_out)]
    path = tmp_path / "u.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in rows).encode()))
    assert {file for _, _, file, _ in evaluate.unipen_drawings(path)} == {held_out, other_held_out}
    drawn = evaluate.unipen_drawings(path, files=[held_out])
    assert [(label, file) for _, label, file, _ in drawn] == [(1, held_out)] * 3  # once in each export style
    with pytest.raises(unipen.UnipenError, match="none of the files named"):
        evaluate.unipen_drawings(path, files=["data/1a/aga/annzchrl.dat"])  # a training file


def unipen_validation_file() -> str:
    return next(f"data/1a/x/{i}.dat" for i in range(1000) if unipen.held_out(f"data/1a/x/{i}.dat"))


def test_4_0s_gate_held_out_files_it_never_trained_on():
    """model_store/v4.0/unipen_files.json: the validation files 4.0's retrain learned from and those it was gated on,
    apart, and all of them from the fixed validation split (so the 4.0 base never saw any)."""
    split = json.loads((ROOT / "model_store" / "v4.0" / "unipen_files.json").read_text())
    assert len(split["heldout"]) == len(split["trained"]) == 30
    assert not set(split["heldout"]) & set(split["trained"])
    assert all(unipen.held_out(file) for file in split["heldout"] + split["trained"])
