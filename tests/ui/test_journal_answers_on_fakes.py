"""What the JSON API answers while the database is down and writes wait in the journal (db/journal.py): what the
journal can tell is refused at once with the database path's answer (an Idempotency-Key it holds for another image or
another client: 409; a label for another client's entry it holds: 404); what only the database can tell is kept, and
the answer's "note" says it is checked when the database is back, where the replay drops what is not the client's.
On stand-ins: the journal is the real one (tests/support/fakes.py fake_app)."""

from __future__ import annotations

import uuid

import pytest

from tests.handler.test_numbers import drawing, one, seven, zero

pytestmark = pytest.mark.usefixtures("fake_app")
PNG = {"Content-Type": "image/png"}
SEVEN, OTHER = b"\x89PNG\r\n\x1a\n a seven", b"\x89PNG\r\n\x1a\n another image"
NUMBER = drawing(one(150), seven(300), zero(480))


def keyed(key: str) -> dict[str, str]:
    return {**PNG, "Idempotency-Key": key}


async def test_a_reused_key_is_refused_at_once_when_the_journal_holds_it(fake_app, create_user):
    alice, mallory = create_user(), create_user()
    await alice.open("/")
    await mallory.open("/")
    fake_app.app.predictions.database_down = True
    key = str(uuid.uuid4())
    first = await alice.http_client.post("/api/predictions", content=SEVEN, headers=keyed(key))
    assert first.json()["saved"] == "journal" and "checked" in first.json()["note"]  # the database may hold the key
    retry = await alice.http_client.post("/api/predictions", content=SEVEN, headers=keyed(key))
    assert retry.json()["saved"] == "journal" and "note" not in retry.json()  # the journal holds it: a retry
    reused = await alice.http_client.post("/api/predictions", content=OTHER, headers=keyed(key))
    assert reused.status_code == 409 and "another image" in reused.json()["detail"]
    taken = await mallory.http_client.post("/api/predictions", content=SEVEN, headers=keyed(key))
    assert taken.status_code == 409 and "another client" in taken.json()["detail"]
    unkeyed = (await alice.http_client.post("/api/predictions", content=OTHER, headers=PNG)).json()
    assert unkeyed["saved"] == "journal" and "note" not in unkeyed  # a key chosen by the server is new
    assert fake_app.app.predictions.journal.pending == 2  # the first (once) and the unkeyed one
    await fake_app.app.predictions.replay()
    assert [row.canvas_png for row in fake_app.store.rows] == [SEVEN, OTHER]


async def test_a_label_for_another_clients_journaled_prediction_is_refused_at_once(fake_app, create_user):
    alice, mallory = create_user(), create_user()
    await alice.open("/")
    await mallory.open("/")
    fake_app.app.predictions.database_down = True
    drawn = (await alice.http_client.post("/api/predictions", content=SEVEN, headers=PNG)).json()
    label = f"/api/predictions/{drawn['request_id']}/label"
    refused = await mallory.http_client.put(label, json={"digit": 1})
    assert refused.status_code == 404 and refused.json()["detail"] == "no such prediction of yours"
    mine = await alice.http_client.put(label, json={"digit": 7})
    assert mine.json() == {"request_id": drawn["request_id"], "digit": 7, "saved": "journal"}  # certain: no note
    await fake_app.app.predictions.replay()
    assert fake_app.store.rows[0].true_digit == 7


async def test_what_only_the_database_can_tell_is_kept_with_a_note_and_dropped_at_replay(fake_app, create_user, caplog):
    """Alice's prediction is in the database before the outage: during it, nobody can tell whose it is nor which
    image its key names; the answers say so, and the replay keeps only what is Alice's and her image's."""
    alice, mallory = create_user(), create_user()
    await alice.open("/")
    await mallory.open("/")
    key = str(uuid.uuid4())
    stored = (await alice.http_client.post("/api/predictions", content=SEVEN, headers=keyed(key))).json()
    assert stored["saved"] == "database" and "note" not in stored
    fake_app.app.predictions.database_down = True
    label = f"/api/predictions/{key}/label"
    theirs = (await mallory.http_client.put(label, json={"digit": 1})).json()
    mine = (await alice.http_client.put(label, json={"digit": 4})).json()
    for answer in (theirs, mine):
        assert (
            answer["saved"] == "journal"
            and "applied when the database is back if that prediction is yours" in (answer["note"])
        )
    reused = (await alice.http_client.post("/api/predictions", content=OTHER, headers=keyed(key))).json()
    assert reused["saved"] == "journal" and "dropped when it is back" in reused["note"]
    await fake_app.app.predictions.replay()
    assert [(row.canvas_png, row.true_digit) for row in fake_app.store.rows] == [(SEVEN, 4)]
    assert fake_app.app.predictions.journal.pending == 0
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert any("used for another image" in error for error in errors)  # set aside for an operator, as it says
    caplog.clear()


async def test_numbers_are_answered_the_same_way(fake_app, create_user):
    fake_app.predictor.numbers[NUMBER] = "170"
    alice, mallory = create_user(), create_user()
    await alice.open("/")
    await mallory.open("/")
    fake_app.app.predictions.database_down = True
    key = str(uuid.uuid4())
    first = (await alice.http_client.post("/api/numbers", content=NUMBER, headers=keyed(key))).json()
    assert first["saved"] == "journal" and "checked" in first["note"]
    reused = await alice.http_client.post("/api/numbers", content=drawing(seven(300)), headers=keyed(key))
    assert reused.status_code == 409 and "another image" in reused.json()["detail"]
    assert (await mallory.http_client.post("/api/numbers", content=NUMBER, headers=keyed(key))).status_code == 409
    for path, body in ((f"/api/numbers/{key}/label", {"number": "171"}), (f"/api/numbers/{key}/digits/0/label",
                                                                           {"digit": 4})):  # fmt: skip
        assert (await mallory.http_client.put(path, json=body)).status_code == 404
        mine = (await alice.http_client.put(path, json=body)).json()
        assert mine["saved"] == "journal" and "note" not in mine
    later = str(uuid.uuid4())  # a number the journal does not hold: its labels are checked at the replay
    unknown = (await alice.http_client.put(f"/api/numbers/{later}/label", json={"number": "1"})).json()
    assert "if that number is yours" in unknown["note"]
    await fake_app.app.predictions.replay()
    (stored,) = fake_app.numbers.numbers
    assert stored.true_number == "471" and fake_app.app.predictions.journal.pending == 0
