"""Alerts through a real nats-server: an alert is bridged like any event type, and a
message with a forged signature raises ``signature_refused`` at the importer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sealbus
from sealbus import AlertConfig, audit
from sealbus.nats import Bridge, Identity
from sealbus.nats.wire import Outgoing, encode
from test_nats_bridge import Server, pytestmark, server, wait_for  # noqa: F401 (fixture, marks)


def test_an_alert_crosses_the_bridge_and_a_forged_signature_alerts(tmp_path: Path, server: Server) -> None:  # noqa: F811
    transit = sealbus.KeyRing.generate()
    shop_a = Identity.generate()
    a = sealbus.Router(tmp_path / "a", alerts=AlertConfig(refused_burst=1, interval=3600))
    plugin = a.principal("plugin")
    with Bridge(a, server.url, name="shop-a", identity=shop_a, transit_keys=transit, exports=["sealbus.alert.*"]) as ba:
        with pytest.raises(sealbus.PolicyDenied):
            a.producer(plugin).publish("orders.placed", {"total": 1})
        assert a.alerts is not None
        assert [x.kind for x in a.alerts.check()] == ["refused_burst"]
        assert ba.flush(60)
    a.close()

    b = sealbus.Router(tmp_path / "b", alerts=AlertConfig(interval=3600))
    b.policy.allow_publish("shop-a/sealbus.alerts", "sealbus.alert.*")
    security = b.principal("security")
    b.policy.allow_subscribe(security, "sealbus.alert.*")
    watch = b.subscribe(security, "sealbus.alert.*")
    with Bridge(
        b,
        server.url,
        name="shop-b",
        identity=Identity.generate(),
        transit_keys=transit,
        imports=["sealbus.alert.*"],
        trust={"shop-a": shop_a.public_bytes},
    ) as bb:
        assert wait_for(lambda: bb.stats()["imported"] == 1)
        (m,) = watch.poll(10, 10.0)
        m.ack()
        assert m.type == "sealbus.alert.refused_burst" and m.data["subject"] == "plugin"
        assert m.event.source == "shop-a/sealbus.alerts"  # the remote publisher, as it acts here

        # Someone claiming to be shop-a, without its identity.
        event_id = sealbus._sealbus.new_event_ids(1)[0]
        forged_event = {"specversion": "1.0", "id": event_id, "source": "sealbus.alerts"}
        body = {**forged_event, "type": "sealbus.alert.new_type", "data": {"kind": "new_type"}}
        ev = Outgoing(event_id, None, json.dumps(body).encode())
        forged, headers = encode("shop-a", "sealbus.alert.new_type", [ev], transit, Identity.generate())

        async def inject() -> None:
            import nats

            nc = await nats.connect(server.url)
            await nc.jetstream().publish("sealbus.sealbus.alert.new_type", forged, headers=headers)
            await nc.close()

        asyncio.run(inject())
        assert wait_for(lambda: bb.stats()["refused_signature"] == 1)
    assert b.alerts is not None
    (alert,) = b.alerts.check()
    assert alert.kind == "signature_refused" and alert.subject == "shop-a"
    (m,) = watch.poll(10, 10.0)
    assert m.type == "sealbus.alert.signature_refused" and m.data["failures"] == 1
    b.close()
    trail = list(audit.entries(tmp_path / "b"))
    imports = [e for e in trail if e["kind"] == "import"]
    assert [(e["principal"], e["type"], e["count"]) for e in imports] == [
        ("shop-a/sealbus.alerts", "sealbus.alert.refused_burst", 1)
    ]
    (refused,) = [e for e in trail if e["kind"] == "bridge_refused"]
    assert refused["reason"] == "signature" and refused["router"] == "shop-a"
