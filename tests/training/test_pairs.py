"""The pair reader's training (training/pairs.py): its drawings and labels, a short training run, the measure (which
must read exactly as the handler's chooser when the pair reader is off) and the float16 export the handler loads."""

import dataclasses

import numpy as np
import torch

from handler import segmentation
from handler.model import for_inference, load_pair_net, pair_net
from handler.preprocess import normalise
from tests.conftest import SHIPPED_V4_WEIGHTS
from training import pairs
from training.segmentation_eval import InProcessReader, NumberSpec, composed_set

from .test_segmentation_eval import POOL


def test_labels_are_the_pair_or_not_a_pair():
    assert pairs.label_of("42") == 42 and pairs.label_of("07") == 7
    assert pairs.label_of("7") == segmentation.NOT_PAIR == pairs.label_of("123")


def test_training_drawings_are_pairs_and_not_pairs_of_the_pool():
    fields, labels = pairs.data(POOL, count=30, seed=0)
    assert fields.shape == (30, 28, 56) and fields.dtype == np.uint8
    assert (fields.reshape(30, -1).max(1) > 100).all()  # every field has its ink
    kinds = set(labels.tolist())
    assert segmentation.NOT_PAIR in kinds and kinds - {segmentation.NOT_PAIR} <= {11, 17, 71, 77}
    again, _ = pairs.data(POOL, count=30, seed=0)
    assert (again == fields).all()  # seeded


def test_lower_heights_draw_with_a_thicker_pen_relative_to_the_digits():
    thick, _ = pairs.data(POOL, count=30, seed=0, heights=(40, 60))
    thin, _ = pairs.data(POOL, count=30, seed=0, heights=(200, 220))
    # the fields are scaled to one height, so more ink is a thicker pen (measured: 2.3x)
    assert (thick > 127).mean() > 1.3 * (thin > 127).mean()


def test_a_short_training_run_learns_the_pool_and_exports_what_the_handler_loads(tmp_path):
    fields, labels = pairs.data(POOL, count=60, seed=1)
    net = pairs.train(fields, labels, epochs=15, batch=16, log=lambda line: None)
    inputs = torch.from_numpy(normalise(fields.astype(np.float32) / 255)).unsqueeze(1)
    with torch.inference_mode():
        right = (net(inputs).argmax(1).numpy() == labels).mean()
    majority = np.bincount(labels).max() / len(labels)
    assert right > majority + 0.2  # 60 drawings of 5 kinds: learned, not the commonest label everywhere
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    pairs.main(["export", "--weights", str(tmp_path / "weights.pt"), "--out", str(tmp_path / "v" / "pairs.pt")])
    state = torch.load(tmp_path / "v" / "pairs.pt", weights_only=True)
    assert {value.dtype for value in state.values() if value.is_floating_point()} == {torch.float16}
    loaded = load_pair_net(tmp_path / "v" / "pairs.pt")
    assert loaded is not None and not loaded.training
    with torch.inference_mode():
        assert torch.allclose(loaded(inputs), net(inputs), atol=0.05)  # float16 weights, float32 arithmetic
    assert load_pair_net(tmp_path / "missing.pt") is None


def test_with_the_pair_reader_off_the_measure_reads_what_the_handler_reads():
    cases = composed_set(POOL, count=4, seed=5, spec=NumberSpec(lengths=(2, 3), touching=0.5))
    reader = InProcessReader.load(SHIPPED_V4_WEIGHTS)
    untrained = dataclasses.replace(reader, pairs=for_inference(pair_net().eval()))
    never = [(0.4, 1.0, 0.0)]  # offered, but no pair is ever certain
    result = pairs.measure(cases, untrained, settings=never)
    plain = dataclasses.replace(reader, pairs=None)
    assert result["base"] == sum(plain.read_png(case.png)["number"] == case.number.label for case in cases)
    assert result["pair_width 0.4, pair_min 1.0, pair_bonus 0.0"] == result["base"]
    assert result["pair_width 0.4, pair_min 1.0, pair_bonus 0.0: changed"] == []
