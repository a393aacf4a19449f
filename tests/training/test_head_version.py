"""training/head_version.py: a version's folder from a refusal head and its base."""

import json
from datetime import UTC, datetime

import pytest

from training import head_version

HEAD = {
    "refusal": {"threshold": 0.94, "refused": {"mnist_test_as_served": 0.004, "nondigit_letters": 0.9}},
    "digits_at_threshold": {
        "mnist_test_as_served": {"accuracy": 0.9925, "answered_accuracy": 0.99618, "refused": 0.0037}
    },
    "training_negatives": {"letters": 3000},
    "config": {"hidden": 64},
}
BASE = {"test_accuracy": 0.9961, "learned_from": {"labelled_drawings": 500}, "gate": {"passed": True}}


def folders(tmp_path, *, head_files=("weights.pt", "architecture.json", "refusal.json"), pairs=True):
    head, base = tmp_path / "candidate", tmp_path / "v4.0"
    head.mkdir(), base.mkdir()
    for name in head_files:
        (head / name).write_text(f"head {name}")
    (head / "metrics.json").write_text(json.dumps(HEAD))
    (base / "metrics.json").write_text(json.dumps(BASE))
    (base / "weights.pt").write_text("base weights")  # never copied: the head's weights hold the base's
    if pairs:
        (base / "pairs.pt").write_text("pairs")
    (base / "unipen_files.json").write_text('{"heldout": []}')
    return head, base


def test_the_version_holds_the_heads_network_and_the_bases_readers(tmp_path):
    head, base = folders(tmp_path)
    out = head_version.compose(head=head, base=base, out=tmp_path / "v5.0", now=datetime(2026, 12, 7, tzinfo=UTC))
    assert (out / "weights.pt").read_text() == "head weights.pt"
    assert (out / "refusal.json").read_text() == "head refusal.json"
    assert (out / "pairs.pt").read_text() == "pairs"
    assert (out / "unipen_files.json").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] == 0.9962  # over the digits answered, not the base's 0.9961
    assert metrics["learned_from"] == BASE["learned_from"] and metrics["gate"] == {"passed": True}
    assert metrics["refusal"]["threshold"] == 0.94
    assert metrics["head"]["base_version"] == "4.0" and metrics["head"]["training_negatives"] == {"letters": 3000}
    assert metrics["created_at"] == "2026-12-07T00:00:00+00:00"


def test_a_base_without_a_pair_reader_gives_a_version_without_one(tmp_path):
    head, base = folders(tmp_path, pairs=False)
    out = head_version.compose(head=head, base=base, out=tmp_path / "v5.0")
    assert not (out / "pairs.pt").exists()


def test_a_head_folder_without_its_refusal_is_refused_and_nothing_is_written(tmp_path):
    head, base = folders(tmp_path, head_files=("weights.pt", "architecture.json"))
    with pytest.raises(head_version.HeadVersionError, match=r"refusal\.json"):
        head_version.compose(head=head, base=base, out=tmp_path / "v5.0")
    assert not (tmp_path / "v5.0").exists()


def test_a_digit_networks_report_is_not_taken_for_a_heads(tmp_path):
    head, base = folders(tmp_path)
    (head / "metrics.json").write_text(json.dumps(BASE))
    with pytest.raises(head_version.HeadVersionError, match="not a refusal head"):
        head_version.compose(head=head, base=base, out=tmp_path / "v5.0")
