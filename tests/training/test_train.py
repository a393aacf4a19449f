"""Storing weights: float16 halves the file, and the loaded model is float32 with (almost) the same outputs."""

import torch

from handler.model import DigitNet
from training.train import save_weights


def test_half_weights_load_back_into_a_float32_ensemble(tmp_path):
    torch.manual_seed(0)
    model = DigitNet(members=2).eval()
    save_weights(model, tmp_path / "full.pt")
    save_weights(model, tmp_path / "half.pt", half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.55 * (tmp_path / "full.pt").stat().st_size
    loaded = DigitNet(members=2).eval()
    loaded.load_state_dict(torch.load(tmp_path / "half.pt", weights_only=True))
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.randn(16, 1, 28, 28)
    with torch.inference_mode():
        assert torch.allclose(model(x).softmax(1), loaded(x).softmax(1), atol=1e-2)
        assert not torch.equal(model(x), loaded(x))  # it really went through float16
