"""The local journal against a real PostgreSQL: replayed in order and exactly once, kept through an outage, never
overwriting a newer label, dropping only entries the database refuses for good."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db.journal import Journal, Waiting, batches
from db.journal_entries import encode_prediction
from db.pool import open_pool
from db.predictions import PredictionStore
from records.errors import JournalFull, JournalWriteError, StoreUnavailable
from records.predictions import Prediction, StoredPrediction

pytestmark = pytest.mark.asyncio


def prediction(browser: str = "b1", digit: int = 3) -> StoredPrediction:
    probabilities = [0.0] * 10
    probabilities[digit] = 1.0
    return StoredPrediction(
        request_id=uuid.uuid4(),
        browser_id=browser,
        answer=Prediction(
            digit=digit,
            confidence=1.0,
            probabilities=probabilities,
            model_name="mnist",
            model_version="2.0",
            preview_png=b"preview",
            latency_ms=12.5,
        ),
        canvas_png=b"\x89PNG drawing " + uuid.uuid4().bytes,
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


async def journal_of(tmp_path, count: int) -> tuple[Journal, list[StoredPrediction]]:
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
    entry = encode_prediction(old)
    del entry["prediction"]["created_at"]  # as lines were written before
    with journal.path.open("a") as file:
        file.write(json.dumps(entry) + "\n")
    journal._index = None  # the line written by hand: read the file again
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


# ---- what the journal may hold ----------------------------------------------------------------------------------


def big(browser: str, network: str | None = None, *, size: int = 3000) -> StoredPrediction:
    """A prediction whose drawing is `size` random bytes: its line takes ~4/3 of that (base64)."""
    from dataclasses import replace

    return replace(prediction(browser), canvas_png=b"\x89PNG" + os.urandom(size), client_network=network)


async def test_a_client_a_network_and_the_whole_journal_hold_at_most_their_cap(tmp_path):
    journal = Journal(tmp_path / "pending.jsonl", max_bytes=40_000, max_bytes_per_client=10_000,
                      max_bytes_per_network=20_000)  # fmt: skip
    await journal.add_prediction(big("alice", "203.0.113.0/24"))  # ~4.4 KB a line
    await journal.add_label(request_id=uuid.uuid4(), browser_id="alice", true_digit=1)  # ~200 bytes, counted as 4 KB
    size = journal.path.stat().st_size
    with pytest.raises(JournalFull, match="store for drawings waiting for it is full: your drawing was NOT saved"):
        await journal.add_prediction(big("alice", "203.0.113.0/24"))  # 8.5 + 4.4 KB: over alice's 10 KB
    with pytest.raises(JournalFull, match="your label was NOT saved") as full:
        await journal.add_label(request_id=uuid.uuid4(), browser_id="alice", true_digit=1)
    assert full.value.cap == "for this client" and isinstance(full.value, JournalWriteError)
    for cookie in ("fresh 1", "fresh 2", "fresh 3"):  # fresh cookies of the same network: its cap holds
        try:
            await journal.add_prediction(big(cookie, "203.0.113.0/24"))
        except JournalFull as exc:
            assert exc.cap == "for this network"
    assert journal.size <= 20_000
    for network in ("192.0.2.0/24", "198.51.100.0/24", "192.0.3.0/24", "192.0.4.0/24", "192.0.5.0/24"):
        with contextlib.suppress(JournalFull):
            await journal.add_prediction(big(network, network))
    with pytest.raises(JournalFull) as full:
        await journal.add_prediction(big("bob", "192.0.6.0/24"))
    assert full.value.cap == "in all" and journal.size <= 40_000
    assert journal.path.stat().st_size == journal.size > size  # what was refused left nothing in the file
    assert Journal(journal.path).size == journal.size  # counted again from the file after a restart
    restarted = Journal(journal.path, max_bytes_per_client=10_000)
    with pytest.raises(JournalFull):
        await restarted.add_prediction(big("alice", "203.0.113.0/24"))  # alice's share survives a restart


async def test_a_replay_makes_room_again(pool, tmp_path):
    journal = Journal(tmp_path / "pending.jsonl", max_bytes_per_client=10_000)
    for _ in range(2):
        await journal.add_prediction(big("alice"))
    with pytest.raises(JournalFull):
        await journal.add_prediction(big("alice"))
    assert await journal.replay(PredictionStore(pool)) == 2
    await journal.add_prediction(big("alice"))
    assert journal.pending == 1


class Discard:
    """A replay target that keeps nothing: what a replay holds in memory is the journal's own."""

    def __init__(self):
        self.written = 0

    async def insert(self, row: StoredPrediction) -> int:
        self.written += 1
        return self.written

    async def set_feedback_by_request_id(self, **label) -> bool:
        return True


async def test_a_large_journal_is_read_and_replayed_a_chunk_at_a_time_off_the_event_loop(tmp_path, monkeypatch):
    """60 MB of entries (300 KB drawings): reading the index and replaying them never holds more than a fraction of
    the file (the replay used to read it whole on the event loop: 476 MB took 3.4 s and 989 MB of memory)."""
    import threading
    import tracemalloc

    import db.journal_replay

    path = tmp_path / "pending.jsonl"
    with path.open("w") as file:
        for _ in range(200):
            file.write(json.dumps(encode_prediction(big("alice", size=300_000))) + "\n")
    size = path.stat().st_size
    read_in: set[str] = set()
    read = db.journal_replay.read_entries

    def noted(*args):
        read_in.add(threading.current_thread().name)
        return read(*args)

    monkeypatch.setattr(db.journal_replay, "read_entries", noted)
    journal, store = Journal(path), Discard()
    tracemalloc.start()
    try:
        await journal.load()
        assert journal.pending == 200
        assert await journal.replay(store) == 200
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.written == 200 and not path.exists()
    assert peak < size / 8, (peak, size)
    assert read_in and threading.main_thread().name not in read_in


async def test_what_is_appended_during_a_replay_stays_for_the_next(tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    await journal.add_prediction(prediction())
    late = prediction()

    class AppendsMeanwhile(Discard):
        async def insert(self, row: StoredPrediction) -> int:
            if row.request_id != late.request_id:
                await journal.add_prediction(late)
            return await super().insert(row)

    store = AppendsMeanwhile()
    assert await journal.replay(store) == 1
    assert journal.pending == 1 and journal.pending_request_ids() == {late.request_id}
    assert await journal.replay(store) == 1 and journal.pending == 0


@pytest.mark.slow
async def test_the_journal_is_written_within_seconds_of_the_database_coming_back(db_url, tmp_path):
    """The database unreachable for 17 s (a proxy in front of it refusing connections), then back: the replay loop
    writes the journal within a few seconds (measured: 1.1 s). The pool's reconnection used to back off (1, 2, 4,
    8, 16 s...): the journal was written 12.6 s after the database was back here, 45 s in the new-user trial."""
    from app.predictions import Predictions
    from tests.support.fakes import FakePredictor

    async with Proxy(db_url) as proxy:
        pool = await open_pool(proxy.url, timeout=2)
        try:
            journal = Journal(tmp_path / "pending.jsonl")
            predictions = Predictions(server=FakePredictor(), store=PredictionStore(pool), journal=journal)
            proxy.cut()
            kept = await predictions.predict(b"\x89PNG\r\n\x1a\n a drawing", browser_id="alice")
            assert kept.saved.value == "journal" and predictions.database_down
            replaying = asyncio.create_task(predictions.replay_forever(0.5))
            await asyncio.sleep(17)
            await proxy.restore()
            back = time.monotonic()
            while journal.pending and time.monotonic() - back < 20:
                await asyncio.sleep(0.1)
            waited = time.monotonic() - back
            replaying.cancel()
            assert journal.pending == 0 and not predictions.database_down
            assert waited < 4, waited
        finally:
            await pool.close()
    assert kept.request_id in [r[0] for r in rows(db_url)]  # (the module's database: other tests' rows too)


class Proxy:
    """A TCP proxy in front of the database of `url`: cut() closes every connection and refuses new ones (the
    database unreachable), restore() accepts again."""

    def __init__(self, url: str):
        info = conninfo_to_dict(url)
        self.target = (str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
        self.info = info
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return make_conninfo(**{**self.info, "host": "127.0.0.1", "port": self.port})  # type: ignore[arg-type]

    async def __aenter__(self) -> Proxy:
        await self.restore()
        return self

    async def __aexit__(self, *exc) -> None:
        self.cut()

    async def restore(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.links):
            writer.transport.abort()
        self.links.clear()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.links |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.links -= {writer, up_writer}


# ---- replay in batches ------------------------------------------------------------------------------------------


async def test_a_replay_in_batches_writes_every_entry_once_and_sets_aside_only_what_the_database_refuses(
    pool, db_url, tmp_path
):
    """450 predictions in three transactions; one the database refuses (a CHECK) in the second is set aside alone:
    its batch is written again, one entry a transaction."""
    from dataclasses import replace

    journal = Journal(tmp_path / "pending.jsonl")
    kept = [prediction(digit=i % 10) for i in range(450)]
    refused = replace(prediction(), answer=replace(prediction().answer, probabilities=[-0.5] + [1.5 / 9] * 9))
    # the table's CHECK refuses it
    for index, row in enumerate(kept):
        await journal.add_prediction(row)
        if index == 250:
            await journal.add_prediction(refused)
    await journal.add_label(request_id=kept[0].request_id, browser_id="b1", true_digit=9)
    assert await journal.replay(PredictionStore(pool), batches=batches(pool)) == 452
    stored = rows(db_url)
    assert [r[0] for r in stored] == [row.request_id for row in kept] and stored[0][3] == 9
    assert journal.pending == 0 and journal.set_aside == 1
    assert str(refused.request_id) in journal.rejected_path.read_text()


async def test_an_outage_in_a_batch_keeps_the_whole_batch_for_the_next_replay(pool, db_url, tmp_path):
    journal = Journal(tmp_path / "pending.jsonl")
    kept = [prediction(digit=i % 10) for i in range(450)]
    for row in kept:
        await journal.add_prediction(row)
    shared = batches(pool)
    inserts = [0]

    class Failing:
        def __init__(self, store: PredictionStore):
            self.store = store

        async def insert(self, row: StoredPrediction) -> int:
            inserts[0] += 1
            if inserts[0] == 250:  # in the second batch
                raise StoreUnavailable("database unavailable: connection lost")
            return await self.store.insert(row)

        async def set_feedback_by_request_id(self, **label) -> bool:
            return await self.store.set_feedback_by_request_id(**label)

    @contextlib.asynccontextmanager
    async def failing():
        async with shared() as (store, numbers):
            yield Failing(store), numbers

    assert await journal.replay(PredictionStore(pool), batches=failing) == 200
    assert len(rows(db_url)) == 200 and journal.pending == 250  # the second batch rolled back, and kept
    assert await journal.replay(PredictionStore(pool), batches=shared) == 250
    assert [r[0] for r in rows(db_url)] == [row.request_id for row in kept]
