"""A network with an 11th "not a digit" output (DigitNet(classes=11), built from architecture.json) is served like
any other: the answer still carries ten digit probabilities, renormalised over the digits."""

import json
import math

import torch

from handler.model import DigitNet
from tests.handler.test_mnist_handler import handle, load_handler
from training.archive import build


def test_an_eleven_output_archive_answers_ten_renormalised_digit_probabilities(tmp_path, canvas_pngs):
    version = tmp_path / "v9.9"
    version.mkdir()
    torch.manual_seed(0)
    model = DigitNet(classes=11)
    with torch.no_grad():
        model.classifier[-1].bias[10] = 50.0  # "not a digit" would take all the probability if it were included
    torch.save(model.state_dict(), version / "weights.pt")
    (version / "architecture.json").write_text(json.dumps({"classes": 11}))
    archive = build(version="9.9", weights=version / "weights.pt", out=tmp_path / "store")
    served = load_handler(archive, tmp_path / "model_dir", batch_size=2)
    (answer,), (status,) = handle(served, [{"body": canvas_pngs[0][0]}])
    assert status == 200
    assert len(answer["probabilities"]) == 10
    assert math.isclose(sum(answer["probabilities"]), 1.0, abs_tol=1e-5)
    assert answer["digit"] == max(range(10), key=lambda d: answer["probabilities"][d])
