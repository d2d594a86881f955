"""Which producer an end-to-end frame is bound to, on the router that stores it: its
source, or, for an event imported from another router (``<router>/<principal>``),
the principal as that router named it (docs/FORMAT.md, *Across routers*). The bridge
hands imported frames to the router with ``publish_runs``, as here."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sealbus
from sealbus._sealbus import new_event_ids, publish_runs
from sealbus.e2e import ConsumerKeyPair, seal_e2e
from sealbus.endtoend import producer_readings


def router(tmp: Path) -> tuple[sealbus.Router, ConsumerKeyPair, sealbus.Subscription, sealbus.Subscription]:
    r = sealbus.Router(tmp / "log", allow_schemaless=True)
    r.policy.require_end_to_end("orders.*")
    keys = ConsumerKeyPair.generate()
    shipping = r.principal("shipping", public_key=keys.public_bytes)
    r.policy.allow_subscribe(shipping, "orders.*")
    polled = r.subscribe(shipping, "orders.placed", keypair=keys)
    batched = r.subscribe(shipping, "orders.placed", name="batches", keypair=keys)
    return r, keys, polled, batched


def imported(r: sealbus.Router, who: str, frames: bytes, offsets: list[int], ids: list[str]) -> None:
    """Store frames as the bridge stores an imported run."""
    p = r.principal(who)
    r.policy.allow_publish(p, "orders.*")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ((whole, each),) = publish_runs(
        r._core, [(p.name, p._token, "orders.placed", None, "e2e", None, frames, offsets, ids, [now] * len(ids))]
    )
    assert whole is None and not each


def sealed_by(source: str, keys: ConsumerKeyPair, rid: str, n: int) -> tuple[bytes, list[int], list[str]]:
    docs = [json.dumps({"n": i}).encode() for i in range(n)]
    offsets = [0]
    for d in docs:
        offsets.append(offsets[-1] + len(d))
    ids = new_event_ids(n)
    frames, fo = seal_e2e(
        b"".join(docs),
        offsets,
        recipients={rid: keys.public_key},
        event_ids=ids,
        event_type="orders.placed",
        source=source,
        schema_version=0,
    )
    return bytes(frames), [int(o) for o in fo], ids


def test_readings_of_a_source() -> None:
    assert producer_readings("checkout") == ["checkout"]
    assert producer_readings("shop-a/checkout") == ["checkout", "shop-a/checkout"]
    assert producer_readings("shop-a/team/checkout") == ["team/checkout", "shop-a/team/checkout"]
    assert producer_readings("/checkout") == ["/checkout"]


def test_an_imported_frame_opens_bound_to_its_origin_principal(tmp_path: Path) -> None:
    r, keys, polled, batched = router(tmp_path)
    # Sealed on shop-a by its producer "checkout", for shop-b's "shipping".
    frames, offsets, ids = sealed_by("checkout", keys, "shop-b/shipping", 3)
    imported(r, "shop-a/checkout", frames, offsets, ids)
    msgs = polled.poll(10, 5.0)
    assert [m.event.source for m in msgs] == ["shop-a/checkout"] * 3
    assert [m.data for m in msgs] == [{"n": 0}, {"n": 1}, {"n": 2}]
    batch = batched.poll_batch(10, 5.0)
    assert [batch[i].data for i in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    r.close()


def test_a_frame_stored_as_another_principal_does_not_open(tmp_path: Path) -> None:
    r, keys, polled, batched = router(tmp_path)
    frames, offsets, ids = sealed_by("checkout", keys, "shop-b/shipping", 2)
    # Passed off as shop-c's "mallory": the AAD still names "checkout".
    imported(r, "shop-c/mallory", frames, offsets, ids)
    for m in polled.poll(10, 5.0):
        with pytest.raises(sealbus.IntegrityError):
            _ = m.data
    batch = batched.poll_batch(10, 5.0)
    assert len(batch) == 2 and all(isinstance(e, sealbus.IntegrityError) for e in batch.errors)
    r.close()


def test_a_local_principal_with_a_slash_in_its_name_still_opens(tmp_path: Path) -> None:
    r, _keys, polled, batched = router(tmp_path)
    team = r.principal("team/checkout")
    r.policy.allow_publish(team, "orders.*")
    r.producer(team).publish_many("orders.placed", [{"n": 0}, {"n": 1}])
    assert [m.data for m in polled.poll(10, 5.0)] == [{"n": 0}, {"n": 1}]
    batch = batched.poll_batch(10, 5.0)
    assert [batch[i].data for i in range(2)] == [{"n": 0}, {"n": 1}]
    r.close()
