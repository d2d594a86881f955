"""End-to-end batches opened in one call: several data keys in one batch (each
unwrapped once), frames built with ``cryptography`` alone, and a consumer's
``poll_batch`` on an end-to-end type (opened, validated, one error per bad event)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
import seal_format as fmt
import sealbus
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sealbus._sealbus import RecipientKey, new_event_ids
from sealbus.aead import pack, unpack
from sealbus.e2e import ConsumerKeyPair, open_e2e, seal_e2e
from sealbus.endtoend import OpenedBatch

EV = {"event_type": "orders.placed", "source": "checkout", "schema_version": 0}


def _reference_frame(consumer: ConsumerKeyPair, rid: str, dk: bytes, dk_id: str, eid: str, data: bytes) -> bytes:
    """A frame built by the format's reference (``cryptography`` only)."""
    nonce = os.urandom(12)
    rec = fmt.wrap(dk, rid, consumer.public_key, fmt.wrap_context(dk_id, EV["event_type"]))  # type: ignore[arg-type]
    aad = fmt.aad(fmt.END_TO_END, dk_id, eid, **EV)  # type: ignore[arg-type]
    return fmt.build(fmt.END_TO_END, dk_id, nonce, AESGCM(dk).encrypt(nonce, data, aad), [rec])


def test_one_call_opens_frames_under_several_data_keys() -> None:
    me = ConsumerKeyPair.generate()
    dks = {f"dk-{i}": os.urandom(32) for i in range(3)}
    plan = [("dk-0", b"a"), ("dk-1", b"bb"), ("dk-0", b""), ("dk-2", os.urandom(3000)), ("dk-1", b"{}")]
    ids = [f"e{i}" for i in range(len(plan))]
    frames = [_reference_frame(me, "me", dks[k], k, eid, d) for (k, d), eid in zip(plan, ids, strict=True)]
    buf, offs = pack(frames)
    out, o = open_e2e(buf, offs, keypair=me, recipient_id="me", event_ids=ids, **EV)  # type: ignore[arg-type]
    assert unpack(out, o) == [d for _, d in plan]
    # Swapping two events' ids breaks their AAD: the whole call fails, naming an item.
    with pytest.raises(sealbus.IntegrityError, match="item 1"):
        open_e2e(buf, offs, keypair=me, recipient_id="me", event_ids=["e0", "e2", "e1", "e3", "e4"], **EV)  # type: ignore[arg-type]


def test_rust_key_matches_cryptography_key() -> None:
    me = ConsumerKeyPair.generate()
    assert me.recipient_key.public_bytes == me.public_bytes
    assert RecipientKey(me.private_bytes()).public_bytes == me.public_bytes
    assert me.private_bytes().hex() not in repr(me.recipient_key)
    with pytest.raises(sealbus.InvalidArgument):
        RecipientKey(b"short")


def test_large_batch_across_threads_matches_the_reference() -> None:
    me = ConsumerKeyPair.generate()
    payloads = [os.urandom(16384) for _ in range(80)]  # over the threading threshold
    ids = [f"e{i}" for i in range(len(payloads))]
    buf, offs = pack(payloads)
    frames, foffs = seal_e2e(buf, offs, recipients={"me": me.public_key}, event_ids=ids, **EV)  # type: ignore[arg-type]
    items = unpack(frames, foffs)
    for i in (0, 41, 79):
        f = fmt.parse(items[i])
        dk = fmt.unwrap(
            me._private, "me", f.recipients[0][1], f.recipients[0][2], fmt.wrap_context(f.key_id, EV["event_type"])
        )
        assert AESGCM(dk).decrypt(f.nonce, f.sealed, fmt.aad(fmt.END_TO_END, f.key_id, ids[i], **EV)) == payloads[i]  # type: ignore[arg-type]
    nonces = {fmt.parse(x).nonce for x in items}
    assert len(nonces) == len(items), "a nonce repeated under one data key"
    out, _o = open_e2e(frames, foffs, keypair=me, recipient_id="me", event_ids=ids, **EV)  # type: ignore[arg-type]
    assert bytes(out) == buf


def _parties(
    router: sealbus.Router, schema: dict[str, object]
) -> tuple[sealbus.Principal, sealbus.Principal, ConsumerKeyPair]:
    """``payments.captured`` under ``schema``, end to end from checkout to billing."""
    router.schemas.register("payments.captured", schema)
    keys = ConsumerKeyPair.generate()
    checkout = router.principal("checkout")
    billing = router.principal("billing", public_key=keys.public_bytes)
    router.policy.require_end_to_end("payments.*")
    router.policy.allow_publish(checkout, "payments.*")
    router.policy.allow_subscribe(billing, "payments.*")
    return checkout, billing, keys


def _shop(tmp_path: Path) -> tuple[sealbus.Router, sealbus.Principal, sealbus.Subscription, ConsumerKeyPair]:
    router = sealbus.Router(tmp_path / "log")
    checkout, billing, keys = _parties(
        router, {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number", "minimum": 0}}}
    )
    sub = router.subscribe(billing, "payments.*", keypair=keys)
    return router, checkout, sub, keys


def _forge(router: sealbus.Router, who: sealbus.Principal, data: bytes, sealed_as: str | None = None) -> None:
    """Publish a frame sealed by a compromised producer (bad data, or sealed for
    another event id)."""
    ids = new_event_ids(1)
    frames, offs = seal_e2e(
        data,
        [0, len(data)],
        recipients=dict(router._core.recipients("payments.captured")),
        event_ids=[sealed_as or ids[0]],
        event_type="payments.captured",
        source=who.name,
        schema_version=0,
    )
    router._core.publish(
        who.name, who._token, "payments.captured", bytes(frames), [int(o) for o in offs], "e2e", ids=ids
    )


def test_poll_batch_opens_every_event_in_one_call(tmp_path: Path) -> None:
    router, checkout, sub, _ = _shop(tmp_path)
    router.producer(checkout).publish_many("payments.captured", [{"amount": a} for a in range(5)])
    router.producer(checkout).publish_many("payments.captured", [{"amount": 10}])
    batch = sub.poll_batch(100, 1.0)
    assert isinstance(batch, OpenedBatch) and len(batch) == 6
    assert batch.errors == [None] * 6
    texts = [bytes(batch.buffer[batch.offsets[i] : batch.offsets[i + 1]]) for i in range(6)]
    assert texts == [b'{"amount":%d}' % a for a in (0, 1, 2, 3, 4, 10)]
    assert [batch[i].data["amount"] for i in range(6)] == [0, 1, 2, 3, 4, 10]
    assert batch.ack() == 6
    router.close()


def test_poll_batch_reports_each_bad_event_and_opens_the_others(tmp_path: Path) -> None:
    router, checkout, sub, _ = _shop(tmp_path)
    router.producer(checkout).publish_many("payments.captured", [{"amount": 1}])
    _forge(router, checkout, b'{"amount":-5}')  # opens, fails its schema
    _forge(router, checkout, b'{"amount":7}', sealed_as="someone-else")  # fails its tag
    router.producer(checkout).publish_many("payments.captured", [{"amount": 2}])
    batch = sub.poll_batch(100, 1.0)
    assert isinstance(batch, OpenedBatch) and len(batch) == 4
    assert batch.errors[0] is None and batch.errors[3] is None
    assert isinstance(batch.errors[1], sealbus.ValidationError)
    assert isinstance(batch.errors[2], sealbus.IntegrityError)
    assert batch[0].data == {"amount": 1} and batch[3].data == {"amount": 2}
    with pytest.raises(sealbus.IntegrityError):
        _ = batch[2].data
    assert b"7" not in bytes(batch.buffer[batch.offsets[2] : batch.offsets[3]])
    assert batch.nack() == 4
    router.close()


def test_poll_batch_of_at_rest_events_is_the_plain_batch(tmp_path: Path) -> None:
    router = sealbus.Router(tmp_path / "log", allow_schemaless=True)
    keys = ConsumerKeyPair.generate()
    shop = router.principal("shop")
    reader = router.principal("reader", public_key=keys.public_bytes)
    router.policy.allow_publish(shop, "orders.*")
    router.policy.allow_subscribe(reader, "orders.*")
    sub = router.subscribe(reader, "orders.*", keypair=keys)
    router.producer(shop).publish_many("orders.placed", [{"n": 1}, {"n": 2}])
    batch = sub.poll_batch(10, 1.0)
    assert not isinstance(batch, OpenedBatch)
    assert bytes(batch.buffer) == b'{"n":1}{"n":2}'
    router.close()


def test_poll_batch_of_one_publish_validates_every_event_and_empties_the_bad_one(tmp_path: Path) -> None:
    """A batch that opens as a whole (one type, every event sealed) is validated in
    one pass: an event that fails its schema still gets its own error, and its data
    leaves the buffer while its neighbours keep theirs."""
    router, checkout, sub, _ = _shop(tmp_path)
    ids = new_event_ids(3)
    docs = [b'{"amount":1}', b'{"amount":-5}', b'{"amount":2}']
    buf, offs = pack(docs)
    frames, foffs = seal_e2e(
        buf,
        offs,
        recipients=dict(router._core.recipients("payments.captured")),
        event_ids=ids,
        event_type="payments.captured",
        source=checkout.name,
        schema_version=0,
    )
    router._core.publish(
        checkout.name, checkout._token, "payments.captured", bytes(frames), [int(o) for o in foffs], "e2e", ids=ids
    )
    batch = sub.poll_batch(100, 1.0)
    assert isinstance(batch, OpenedBatch) and len(batch) == 3
    assert batch.errors[0] is None and batch.errors[2] is None
    assert isinstance(batch.errors[1], sealbus.ValidationError)
    assert unpack(batch.buffer, batch.offsets) == [b'{"amount":1}', b"", b'{"amount":2}']
    with pytest.raises(sealbus.ValidationError):
        _ = batch[1].data
    assert batch[2].data == {"amount": 2}
    assert batch.ack() == 3
    router.close()


# ---- the next batch opened ahead ------------------------------------------------------
#
# While a consumer handles one end-to-end batch, the events ready next (up to two
# batches) are opened and validated ahead on pool threads; a poll uses that work only
# if it took exactly those events. These tests change the queue or the schema in between and
# check that every event still carries its own data, and refusals their own errors.

AHEAD = 200  # events per batch: above the read-ahead's minimum


def _publish_amounts(router: sealbus.Router, who: sealbus.Principal, amounts: range) -> None:
    router.producer(who).publish_many("payments.captured", [{"amount": a} for a in amounts])


def _amounts(batch: object) -> dict[str, int]:
    """Each event's amount by id, from the batch's opened buffer."""
    assert isinstance(batch, OpenedBatch)
    assert batch.errors == [None] * len(batch)
    texts = unpack(batch.buffer, batch.offsets)
    return {eid: json.loads(t)["amount"] for eid, t in zip(batch.ids, texts, strict=True)}


def test_batches_opened_ahead_are_the_events_taken(tmp_path: Path) -> None:
    router, checkout, sub, _ = _shop(tmp_path)
    _publish_amounts(router, checkout, range(5 * AHEAD))
    seen: list[int] = []
    while len(seen) < 5 * AHEAD:
        batch = sub.poll_batch(AHEAD, 1.0)
        seen += _amounts(batch).values()
        # Opening ahead takes nothing: what is not polled is still ready.
        stats = sub.stats()
        assert (stats["in_flight"], stats["ready"]) == (len(batch), 5 * AHEAD - len(seen))
        batch.ack()
    assert seen == list(range(5 * AHEAD))
    router.close()


def test_polls_of_changing_sizes_get_their_own_events_whatever_was_opened_ahead(tmp_path: Path) -> None:
    # Up to two batches are opened ahead, each the size of the last poll: a poll of
    # another size takes events that neither holds exactly.
    router, checkout, sub, _ = _shop(tmp_path)
    sizes = [AHEAD, AHEAD, AHEAD // 2 + 1, 2 * AHEAD, AHEAD, AHEAD - 1, AHEAD]
    _publish_amounts(router, checkout, range(sum(sizes)))
    seen: list[int] = []
    for size in sizes:
        batch = sub.poll_batch(size, 1.0)
        amounts = list(_amounts(batch).values())
        assert amounts == list(range(len(seen), len(seen) + size))
        seen += amounts
        batch.ack()
    assert sub.stats()["ready"] == 0
    router.close()


def test_a_nack_after_reading_ahead_redelivers_the_same_events_with_their_data(tmp_path: Path) -> None:
    router, checkout, sub, _ = _shop(tmp_path)
    _publish_amounts(router, checkout, range(3 * AHEAD))
    first = sub.poll_batch(AHEAD, 1.0)
    by_id = _amounts(first)
    assert first.nack() == AHEAD  # back to the front, ahead of what was opened ahead
    again = sub.poll_batch(AHEAD, 1.0)
    assert _amounts(again) == by_id
    again.ack()
    rest = sub.poll_batch(2 * AHEAD, 1.0)
    assert sorted(_amounts(rest).values()) == list(range(AHEAD, 3 * AHEAD))
    router.close()


def test_a_schema_registered_after_reading_ahead_is_the_one_applied(tmp_path: Path) -> None:
    router, checkout, sub, _ = _shop(tmp_path)
    _publish_amounts(router, checkout, range(2 * AHEAD))
    first = sub.poll_batch(AHEAD, 1.0)  # the next AHEAD events are opened ahead under v1
    # Handling this batch gives the read-ahead time to finish first (when it has not,
    # it sees the new version itself: the outcome must be the same either way).
    assert sorted(_amounts(first).values()) == list(range(AHEAD))
    first.ack()
    router.schemas.register(
        "payments.captured",
        {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number", "maximum": 250}}},
        compatibility="none",
    )
    batch = sub.poll_batch(AHEAD, 1.0)
    assert isinstance(batch, OpenedBatch) and len(batch) == AHEAD
    refused = [i for i, e in enumerate(batch.errors) if e is not None]
    assert refused == list(range(251 - AHEAD, AHEAD))  # amounts 251..399
    assert all(isinstance(batch.errors[i], sealbus.ValidationError) for i in refused)
    assert all(batch.offsets[i] == batch.offsets[i + 1] for i in refused)
    router.close()


def test_a_forged_event_among_those_read_ahead_gets_its_own_error(tmp_path: Path) -> None:
    router, checkout, sub, _ = _shop(tmp_path)
    _publish_amounts(router, checkout, range(AHEAD))
    _publish_amounts(router, checkout, range(AHEAD, 2 * AHEAD - 2))
    _forge(router, checkout, b'{"amount":-5}')  # opens, fails its schema
    _forge(router, checkout, b'{"amount":7}', sealed_as="someone-else")  # fails its tag
    sub.poll_batch(AHEAD, 1.0).ack()
    batch = sub.poll_batch(AHEAD, 1.0)
    assert isinstance(batch, OpenedBatch) and len(batch) == AHEAD
    assert batch.errors[: AHEAD - 2] == [None] * (AHEAD - 2)
    assert isinstance(batch.errors[-2], sealbus.ValidationError)
    assert isinstance(batch.errors[-1], sealbus.IntegrityError)
    texts = unpack(batch.buffer, batch.offsets)
    assert [json.loads(t)["amount"] for t in texts[:-2]] == list(range(AHEAD, 2 * AHEAD - 2))
    assert texts[-2:] == [b"", b""]
    router.close()


def test_a_durable_consumer_opens_events_read_back_from_the_log(tmp_path: Path) -> None:
    """Events read back from the log come sealed at rest too: their frame is what that
    seal opens to, not the event's data. Batches mix both kinds across the window."""
    router = sealbus.Router(tmp_path / "log")
    checkout, billing, keys = _parties(router, {"type": "object", "required": ["amount"]})
    sub = router.subscribe(billing, "payments.*", name="ledger", durable=True, max_pending=8, keypair=keys)
    _publish_amounts(router, checkout, range(3 * AHEAD))
    sub.close()
    _publish_amounts(router, checkout, range(3 * AHEAD, 4 * AHEAD))
    sub = router.subscribe(billing, "payments.*", name="ledger", durable=True, max_pending=8, keypair=keys)
    seen: list[int] = []
    while len(seen) < 4 * AHEAD:
        batch = sub.poll_batch(AHEAD, 1.0)
        assert len(batch) > 0
        assert isinstance(batch, OpenedBatch) and not any(batch.errors)
        seen += _amounts(batch).values()
        assert [batch[i].data["amount"] for i in range(len(batch))] == seen[len(seen) - len(batch) :]
        batch.ack()
    assert seen == list(range(4 * AHEAD))
    router.close()


def test_events_sealed_at_rest_in_memory_open_from_what_that_seal_holds() -> None:
    """A router without a log seals its queues' data at rest: an end-to-end event's
    frame is then what the at-rest seal opens to, not the event's data."""
    router = sealbus.Router(keys=sealbus.KeyRing.generate())
    checkout, billing, keys = _parties(router, {"type": "object", "required": ["amount"]})
    sub = router.subscribe(billing, "payments.*", keypair=keys)
    _publish_amounts(router, checkout, range(2 * AHEAD))
    seen: list[int] = []
    while len(seen) < 2 * AHEAD:
        batch = sub.poll_batch(AHEAD, 1.0)
        assert isinstance(batch, OpenedBatch) and not any(batch.errors)
        seen += _amounts(batch).values()
        batch.ack()
    assert seen == list(range(2 * AHEAD))


# A consumer's polls, acks and nacks in any order, against a model: what is opened
# ahead must never change which events a poll gets, nor the data each one carries.


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        # Sizes that repeat, so that batches opened ahead line up with later polls.
        st.tuples(st.sampled_from([AHEAD, AHEAD, 150, 2 * AHEAD, 7]), st.sampled_from(["ack", "nack", "hold"])),
        min_size=1,
        # At most four nacks: a fifth delivery is the last a subscription allows by
        # default, which this model does not follow (dead letters are tested apart).
        max_size=4,
    )
)
def test_polls_acks_and_nacks_in_any_order_match_the_model(steps: list[tuple[int, str]]) -> None:
    total = 4 * AHEAD
    with tempfile.TemporaryDirectory() as d:
        router, checkout, sub, _ = _shop(Path(d))
        # Two publishes: two data keys among the events ahead.
        n_of: dict[str, int] = {}
        for part in (range(total // 2), range(total // 2, total)):
            receipts = router.producer(checkout).publish_many("payments.captured", [{"amount": a} for a in part])
            n_of.update(zip(receipts.ids, part, strict=True))
        # The model: the ready events, always in the order published (a nack puts
        # events back in their place, ahead of all that came after them).
        ready = list(range(total))
        held: list[tuple[OpenedBatch, list[int]]] = []
        acked: list[int] = []

        def poll(size: int) -> tuple[OpenedBatch, list[int]]:
            batch = sub.poll_batch(size, 1.0)
            assert isinstance(batch, OpenedBatch)
            got = list(_amounts(batch).values())
            # Each event carries its own data, and the batch is the front of the queue.
            assert got == [n_of[i] for i in batch.ids]
            assert got == ready[: len(got)]
            del ready[: len(got)]
            return batch, got

        for size, then in steps:
            if not ready:
                break
            batch, got = poll(size)
            if then == "ack":
                assert batch.ack() == len(got)
                acked += got
            elif then == "nack":
                assert batch.nack() == len(got)
                ready = sorted(ready + got)
            else:
                held.append((batch, got))
        for batch, got in held:
            batch.ack()
            acked += got
        while ready:
            batch, got = poll(AHEAD)
            batch.ack()
            acked += got
        assert sorted(acked) == list(range(total))
        router.close()
