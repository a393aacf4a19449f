"""handler/model.py: the optimised copy the handler runs forward passes on gives the model's own logits."""

from pathlib import Path

import pytest
import torch

from handler.model import DigitNet, for_inference

STORE = Path(__file__).resolve().parents[2] / "model_store"


@pytest.mark.parametrize(
    ("version", "kwargs"),
    [("v1.0", {}), ("v2.0", {"members": 3}), ("v4.0", {}), (None, {"classes": 11}), (None, {"refusal_head": 16})],
)
def test_the_optimised_copy_gives_the_models_logits_at_every_batch_size(version, kwargs):
    torch.manual_seed(0)
    model = DigitNet(**kwargs)
    if version is not None:  # the shipped weights; otherwise random ones (an 11-output net, a refusal head)
        model.load_state_dict(torch.load(STORE / version / "weights.pt", map_location="cpu", weights_only=True))
    else:
        for module in model.modules():  # batch norm statistics that are not the identity, so folding them matters
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    fast = for_inference(model)
    assert not model.training  # the copy is of the model in eval mode (dropout off)
    with torch.inference_mode():
        for n in (1, 3, 8, 17):  # TorchServe's batches vary in size
            x = torch.randn(n, 1, 28, 28)
            expected, got = model(x), fast(x)
            outputs = 11 if kwargs.get("classes") == 11 or "refusal_head" in kwargs else 10
            assert got.shape == expected.shape == (n, outputs)
            assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    # the model itself is untouched and keeps its gradients (explanations use it)
    assert any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
