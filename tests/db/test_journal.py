"""The local journal against a real PostgreSQL: replayed in order and exactly once, kept through an outage, never
overwriting a newer label, dropping only entries the database refuses for good."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from db.journal import Journal, JournalWriteError, Waiting, _encode_prediction
from db.pool import StoreUnavailable, open_pool
from db.predictions import PredictionRow, PredictionStore

pytestmark = pytest.mark.asyncio


def prediction(browser: str = "b1", digit: int = 3) -> PredictionRow:
    probabilities = [0.0] * 10
    probabilities[digit] = 1.0
    return PredictionRow(
        request_id=uuid.uuid4(),
        browser_id=browser,
        model_name="mnist",
        model_version="2.0",
        predicted_digit=digit,
        confidence=1.0,
        probabilities=probabilities,
        canvas_png=b"\x89PNG drawing " + uuid.uuid4().bytes,
        preview_png=b"preview",
        latency_ms=12.5,
    )


def rows(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT request_id, browser_id, predicted_digit, true_digit, canvas_png, preview_png FROM predictions"
            " ORDER BY id"
        ).fetchall()


async def test_replay_writes_predictions_and_labels_once_in_order(pool, db_url, tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    kept = [prediction(digit=d) for d in range(5)]
    for p in kept:
        await journal.add_prediction(p)
        await journal.add_label(request_id=p.request_id, browser_id=p.browser_id, true_digit=(p.predicted_digit + 1))
    await journal.add_label(request_id=kept[0].request_id, browser_id="b1", true_digit=0)  # changed their mind
    assert journal.pending == 11 and journal.pending_request_ids() == {p.request_id for p in kept}
    assert await journal.replay(PredictionStore(pool)) == 11
    assert journal.pending == 0 and not journal.path.exists()
    stored = rows(db_url)
    assert [r[0] for r in stored] == [p.request_id for p in kept]
    assert [r[3] for r in stored] == [0, 2, 3, 4, 5]
    assert stored[1][4] == kept[1].canvas_png and stored[1][5] == b"preview"
    assert await journal.replay(PredictionStore(pool)) == 0 and len(rows(db_url)) == 5


async def test_a_replay_interrupted_after_commit_does_not_duplicate(pool, db_url, tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    p = prediction()
    await journal.add_prediction(p)
    await PredictionStore(pool).insert(p)  # committed, but the process died before trimming the journal
    assert await journal.replay(PredictionStore(pool)) == 1
    assert len(rows(db_url)) == 1


async def test_an_old_label_never_overwrites_a_newer_one(pool, db_url, tmp_path):
    p = prediction()
    await PredictionStore(pool).insert(p)
    journal = Journal(tmp_path / "pending.jsonl")
    await journal.add_label(request_id=p.request_id, browser_id="b1", true_digit=7)
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert await PredictionStore(pool).set_feedback_by_request_id(
        request_id=p.request_id, browser_id="b1", true_digit=8, at=later
    )
    await journal.replay(PredictionStore(pool))
    assert rows(db_url)[0][3] == 8


async def test_a_label_for_another_browser_is_not_applied(pool, db_url, tmp_path):
    p = prediction(browser="alice")
    await PredictionStore(pool).insert(p)
    journal = Journal(tmp_path / "pending.jsonl")
    await journal.add_label(request_id=p.request_id, browser_id="mallory", true_digit=1)
    assert await journal.replay(PredictionStore(pool)) == 1  # consumed, and refused by the WHERE browser_id
    assert rows(db_url)[0][3] is None


async def test_entries_stay_while_the_database_is_down(db_url, tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    await journal.add_prediction(prediction())
    closed = await open_pool(db_url, timeout=2)
    await closed.close()  # a closed pool raises PoolClosed, an OperationalError: the outage path
    assert await journal.replay(PredictionStore(closed)) == 0
    assert journal.pending == 1


async def test_an_entry_the_database_refuses_for_good_is_set_aside_not_blocking(pool, db_url, tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    bad = json.dumps({"kind": "prediction", "prediction": {"request_id": "not a uuid"}})
    journal.path.write_text(bad + "\n")
    good = prediction()
    await journal.add_prediction(good)
    assert await journal.replay(PredictionStore(pool)) == 2
    assert [r[0] for r in rows(db_url)] == [good.request_id]
    assert journal.set_aside == 1 and journal.rejected_path.read_text() == bad + "\n"


async def journal_of(tmp_path, count: int) -> tuple[Journal, list[PredictionRow]]:
    journal = Journal(tmp_path / "pending.jsonl")
    kept = [prediction(digit=d) for d in range(count)]
    for p in kept:
        await journal.add_prediction(p)
    return journal, kept


async def test_a_torn_last_line_is_set_aside_and_the_rest_replays(pool, db_url, tmp_path):
    """The red-team case: the last 300 bytes of the file cut off (a crash mid-write); replay used to raise
    JSONDecodeError, and the app did not start."""
    journal, kept = await journal_of(tmp_path, 3)
    data = journal.path.read_bytes()
    journal.path.write_bytes(data[:-300])
    fresh = Journal(journal.path)  # as after a restart
    assert fresh.pending == 3
    assert await fresh.replay(PredictionStore(pool)) == 3
    assert [r[0] for r in rows(db_url)] == [p.request_id for p in kept[:2]]
    assert fresh.pending == 0 and fresh.set_aside == 1
    assert fresh.rejected_path.read_bytes() == data.splitlines(keepends=True)[2][:-300] + b"\n"
    assert fresh.rejected_path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "junk",
    [b"not json at all", b"[1, 2, 3]", b'{"kind": "mystery"}', b"\xff\xfe\x00binary", b"[" * 100_000, b'"a string"',
     b'{"kind": "label", "request_id": "x"}', b'{"kind": "prediction", "prediction": null}'],
    ids=["text", "list", "unknown-kind", "binary", "deep", "string", "label-fields", "null-prediction"],
)  # fmt: skip
async def test_corrupt_lines_anywhere_are_set_aside_and_the_rest_replays_in_order(pool, db_url, tmp_path, junk):
    journal, kept = await journal_of(tmp_path, 2)
    lines = journal.path.read_bytes().splitlines(keepends=True)
    journal.path.write_bytes(junk + b"\n" + lines[0] + junk + b"\n" + lines[1])
    fresh = Journal(journal.path)
    assert await fresh.replay(PredictionStore(pool)) == 4
    assert [r[0] for r in rows(db_url)] == [p.request_id for p in kept]
    assert fresh.set_aside == 2 and not fresh.path.exists()


async def test_an_entry_appended_after_a_torn_line_stays_readable(pool, db_url, tmp_path):
    """The writer starts a new line when the file ends mid-line, so the torn line does not swallow the next one."""
    journal, _ = await journal_of(tmp_path, 1)
    journal.path.write_bytes(journal.path.read_bytes()[:-40])
    fresh = Journal(journal.path)
    later = prediction(digit=7)
    await fresh.add_prediction(later)
    assert await fresh.replay(PredictionStore(pool)) == 2
    assert [r[0] for r in rows(db_url)] == [later.request_id] and fresh.set_aside == 1


async def test_a_short_write_fails_loudly_and_leaves_the_file_whole(tmp_path, monkeypatch):
    """os.write may write less than asked (a full disk): the writer goes on until all is written, and when the disk
    takes nothing more it raises and cuts the file back, never leaving half a line."""
    journal, _ = await journal_of(tmp_path, 1)
    before = journal.path.read_bytes()
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:100]))  # 100 bytes at a time
    await journal.add_prediction(prediction(digit=5))
    assert Journal(journal.path).pending == 2  # written whole, in several calls

    written = journal.path.read_bytes()
    calls = []

    def disk_full(fd, data):
        calls.append(len(data))
        return real_write(fd, data[:100]) if len(calls) == 1 else 0

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(JournalWriteError, match="could not write"):
        await journal.add_prediction(prediction(digit=6))
    assert journal.path.read_bytes() == written and before in written
    assert journal.pending == 2


async def test_a_write_refused_by_the_system_fails_loudly(tmp_path, monkeypatch):
    journal, _ = await journal_of(tmp_path, 1)
    before = journal.path.read_bytes()

    def no_space(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", no_space)
    with pytest.raises(JournalWriteError, match="No space left"):
        await journal.add_label(request_id=uuid.uuid4(), browser_id="b", true_digit=3)
    assert journal.path.read_bytes() == before and journal.pending == 1


async def test_the_journal_file_is_private_and_survives_a_new_instance(tmp_path):
    path = tmp_path / "journal" / "pending.jsonl"
    await Journal(path).add_prediction(prediction())
    assert path.stat().st_mode & 0o777 == 0o600
    assert Journal(path).pending == 1
    with pytest.raises(ValueError, match="true_digit"):
        await Journal(path).add_label(request_id=uuid.uuid4(), browser_id="b", true_digit=10)


class OutageAfterOne:
    """A replay target whose database goes away after the first entry."""

    def __init__(self):
        self.written = []

    async def insert(self, row):
        if self.written:
            raise StoreUnavailable("down")
        self.written.append(row)
        return 1

    async def set_feedback_by_request_id(self, **_):
        raise StoreUnavailable("down")


async def test_the_journal_stays_private_when_a_partial_replay_rewrites_it(tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    for _ in range(3):
        await journal.add_prediction(prediction())
    assert await journal.replay(OutageAfterOne()) == 1
    assert journal.pending == 2 and journal.path.stat().st_mode & 0o777 == 0o600


async def test_networks_are_kept_through_the_journal_and_old_lines_without_them_replay(pool, db_url, tmp_path):
    """Predictions and labels journaled during an outage keep their networks (the poisoning screen counts them);
    lines written before networks were kept replay with none."""
    from dataclasses import replace

    journal = Journal(tmp_path / "pending.jsonl")
    p = replace(prediction(), client_network="192.0.2.0/24")
    await journal.add_prediction(p)
    await journal.add_label(request_id=p.request_id, browser_id="b1", true_digit=3, network="198.51.100.0/24")
    old = prediction()
    await journal.add_prediction(old)
    line = {"kind": "label", "request_id": str(old.request_id), "browser_id": "b1", "true_digit": 4,
            "at": datetime.now(UTC).isoformat()}  # fmt: skip
    with journal.path.open("a") as file:
        file.write(json.dumps(line) + "\n")
    journal._ids = None  # the file changed behind its back (as after a restart)
    assert await journal.replay(PredictionStore(pool)) == 4
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT true_digit, client_network::text, feedback_network::text FROM predictions ORDER BY id"
        ).fetchall()
    assert stored == [(3, "192.0.2.0/24", "198.51.100.0/24"), (4, None, None)]


async def test_a_replayed_prediction_keeps_the_time_it_was_made_and_old_lines_get_the_replays(pool, db_url, tmp_path):
    """A prediction written an hour after it was made (the outage lasted that long) is dated when it was made, so
    the history shows it where it belongs; a line written before the time was kept replays dated now."""
    from dataclasses import replace

    journal = Journal(tmp_path / "pending.jsonl")
    made = datetime.now(UTC) - timedelta(hours=1)
    dated = replace(prediction(), created_at=made)
    await journal.add_prediction(dated)
    old = prediction()
    entry = _encode_prediction(old)
    del entry["prediction"]["created_at"]  # as lines were written before
    with journal.path.open("a") as file:
        file.write(json.dumps(entry) + "\n")
    journal._ids = None
    assert await journal.replay(PredictionStore(pool)) == 2
    with psycopg.connect(db_url) as conn:
        stored = dict(
            conn.execute(
                "SELECT request_id, created_at FROM predictions WHERE request_id = ANY(%s)",
                ([dated.request_id, old.request_id],),
            ).fetchall()
        )
    assert stored[dated.request_id] == made
    assert abs(stored[old.request_id] - datetime.now(UTC)) < timedelta(minutes=5)


async def test_the_journal_tells_whose_entry_waits_under_a_request_id_and_its_image(tmp_path):
    """What Predictions asks to answer a reused key or a label as the database would, also after a restart (the
    index read back from the file) and past a torn line."""
    journal = Journal(tmp_path / "pending.jsonl")
    first = prediction("b1")
    await journal.add_prediction(first)
    await journal.add_label(request_id=first.request_id, browser_id="b2", true_digit=1)
    await journal.add_prediction(prediction("b2"))
    with journal.path.open("a") as file:
        file.write('{"kind": "prediction", "prediction": {"request_id": "torn\n')
    expected = Waiting(first.request_id, "prediction", "b1", hashlib.sha256(first.canvas_png or b"").digest())
    for reading in (journal, Journal(journal.path)):  # in memory, and read back from the file
        assert reading.waiting(first.request_id, kind="prediction") == expected
        assert reading.waiting(first.request_id, kind="number") is None
        assert reading.waiting(uuid.uuid4(), kind="prediction") is None
