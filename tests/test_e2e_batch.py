"""The batch paths (Subscription.poll_batch, Selector.poll_batch) open end-to-end
events and validate them as poll does: the batch's data is the plaintext, never the
sealed frame, and a consumer that cannot open an event is told why."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import sealbus
from sealbus import Selector
from sealbus.e2e import ConsumerKeyPair, seal_e2e

SCHEMA = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number", "minimum": 0}}}


def shop() -> tuple[sealbus.Router, sealbus.Principal, sealbus.Principal, ConsumerKeyPair]:
    router = sealbus.Router(allow_schemaless=True)
    keys = ConsumerKeyPair.generate()
    checkout = router.principal("checkout")
    billing = router.principal("billing", public_key=keys.public_bytes)
    router.policy.require_end_to_end("payments.*")
    router.policy.allow_publish(checkout, ["payments.*", "orders.*"])
    router.policy.allow_subscribe(billing, ["payments.*", "orders.*"])
    router.schemas.register("payments.captured", SCHEMA)
    return router, checkout, billing, keys


def forged(router: sealbus.Router, who: sealbus.Principal, data: bytes) -> None:
    """What a compromised producer does: seal data the schema refuses, itself."""
    ids = sealbus._sealbus.new_event_ids(1)
    frames, offs = seal_e2e(
        data,
        [0, len(data)],
        recipients=dict(router._core.recipients("payments.captured")),
        event_ids=ids,
        event_type="payments.captured",
        source=who.name,
        schema_version=0,
    )
    router._core.publish(
        who.name, who._token, "payments.captured", bytes(frames), [int(o) for o in offs], "e2e", ids=ids
    )


def data_of(batch: sealbus.DeliveryBatch | object) -> list[bytes]:
    buf, offs = batch.buffer, batch.offsets  # type: ignore[attr-defined]
    return [bytes(buf[offs[i] : offs[i + 1]]) for i in range(len(offs) - 1)]


def test_poll_batch_hands_out_the_plaintext_validated() -> None:
    router, checkout, billing, keys = shop()
    sub = router.subscribe(billing, ["payments.*", "orders.*"], keypair=keys)
    prod = router.producer(checkout)
    prod.publish_many("payments.captured", [{"amount": 1}, {"amount": 2}])
    prod.publish("orders.placed", {"n": 7})
    forged(router, checkout, b'{"amount":-5}')
    batch = sub.poll_batch(10, 1.0)
    assert len(batch) == 4
    assert data_of(batch) == [b'{"amount":1}', b'{"amount":2}', b'{"n":7}', b""]
    assert [batch[i].data for i in range(3)] == [{"amount": 1}, {"amount": 2}, {"n": 7}]
    with pytest.raises(sealbus.ValidationError) as bad:
        _ = batch[3].data
    assert "/amount" in bad.value.path
    assert batch[-1].id == batch.ids[3]
    assert batch.ack() == 4


def test_a_consumer_without_its_key_pair_gets_no_ciphertext_from_a_batch() -> None:
    router, checkout, billing, _keys = shop()
    sub = router.subscribe(billing, "payments.*")
    router.producer(checkout).publish("payments.captured", {"amount": 3})
    batch = sub.poll_batch(10, 1.0)
    assert data_of(batch) == [b""]
    with pytest.raises(sealbus.KeyNotFound):
        _ = batch[0].data
    assert batch[0].ack()


def test_the_raw_batch_refuses_to_call_a_frame_data() -> None:
    router, checkout, billing, _keys = shop()
    sub = router.subscribe(billing, "payments.*")
    router.producer(checkout).publish("payments.captured", {"amount": 3})
    raw = sub._core.poll_batch(10, 1.0)
    assert raw.end_to_end == [0]
    with pytest.raises(sealbus.IntegrityError, match="sealed end to end"):
        _ = raw[0].data
    assert raw[0].event.data_bytes == b""


def test_in_a_mixed_raw_batch_only_the_end_to_end_events_refuse_their_data() -> None:
    router, checkout, billing, _keys = shop()
    sub = router.subscribe(billing, ["orders.*", "payments.*"])
    prod = router.producer(checkout)
    prod.publish("orders.placed", {"n": 1})
    prod.publish("payments.captured", {"amount": 3})
    prod.publish("orders.placed", {"n": 2})
    prod.publish("payments.captured", {"amount": 4})
    raw = sub._core.poll_batch(10, 1.0)
    assert len(raw) == 4 and raw.end_to_end == [1, 3]
    assert [raw[i].data for i in (0, 2)] == [{"n": 1}, {"n": 2}]
    # The frames stay in the events (the consumer's key pair opens them from there):
    # the buffer holds the other events' data only.
    offs = raw.offsets
    assert [bytes(raw.buffer[offs[i] : offs[i + 1]]) for i in range(4)][1::2] == [b"", b""]
    assert bytes(raw.buffer) == b'{"n":1}{"n":2}'
    for i in (1, 3, -1):
        msg = raw[i]
        with pytest.raises(sealbus.IntegrityError, match=f"event {msg.event.id} is sealed end to end"):
            _ = msg.data
        assert msg.event.data_bytes == b""


def test_selector_poll_batch_opens_like_the_subscription() -> None:
    router, checkout, billing, keys = shop()
    payments = router.subscribe(billing, "payments.*", keypair=keys)
    orders = router.subscribe(billing, "orders.*")
    prod = router.producer(checkout)
    prod.publish("payments.captured", {"amount": 5})
    prod.publish("orders.placed", {"n": 1})
    forged(router, checkout, b'{"amount":"five"}')
    got: dict[str, list[bytes]] = {}
    with Selector([payments, orders]) as sel:
        while sum(len(v) for v in got.values()) < 3:
            for sub, batch in sel.poll_batch(10, 1.0):
                got.setdefault(sub.name, []).extend(data_of(batch))
                if sub is payments:
                    assert [json.loads(d) for d in data_of(batch) if d] == [{"amount": 5}]
                    with pytest.raises(sealbus.ValidationError):
                        _ = batch[len(batch) - 1].data
                batch.ack()
    assert got[payments.name] == [b'{"amount":5}', b""]
    assert got[orders.name] == [b'{"n":1}']


def test_poll_batch_async_opens_like_poll_batch() -> None:
    """The asyncio batch poll hands out plaintext too, never the sealed frame."""
    router, checkout, billing, keys = shop()
    sub = router.subscribe(billing, "payments.*", keypair=keys)
    router.producer(checkout).publish("payments.captured", {"amount": 4})
    forged(router, checkout, b'{"amount":-1}')

    async def poll() -> list[Any]:
        batches = [await sub.poll_batch_async(10, timeout=5.0)]
        while sum(len(b) for b in batches) < 2:
            batches.append(await sub.poll_batch_async(10, timeout=5.0))
        return batches

    batches = asyncio.run(poll())
    assert [d for b in batches for d in data_of(b)] == [b'{"amount":4}', b""]
    last = batches[-1]
    with pytest.raises(sealbus.ValidationError):
        _ = last[len(last) - 1].data
