"""`sealbus demo` is the main job: it must run and tell the truth."""

from __future__ import annotations

import io
import subprocess
import sys

from sealbus import demo


def test_demo_routes_what_it_says() -> None:
    out = io.StringIO()
    got = demo.run(out=out, orders=40)
    text = out.getvalue()
    orders = {f"ord-{n:04d}": demo.make_order for n in range(1, 41)}
    assert set(got["inventory"]) == set(orders), "inventory gets every valid order, nothing else"
    assert got["shipping"] and len(got["shipping"]) < 40
    assert "ord-9999" not in text.split("who got what:")[1], "the malformed order reached nobody"
    refusals = [line for line in text.splitlines() if line.startswith("  refused ")]
    assert len(refusals) == 2, "forbidden type and malformed order both refused"
    assert "payments.refund" in refusals[0] and "orders.placed" in refusals[1]
    assert "refused: policy=1 schema=1" in text, "the counters count both refusals"
    assert "none found (ciphertext only)" in text
    assert "caught up from the log" in text
    assert "cannot open it" in text
    assert len(got["billing"]) == 3
    assert got["alerts"] == ["sealbus.alert.refused_burst"], "one alert, about the compromised producer"
    alert = [line for line in text.splitlines() if line.startswith("  alert ")]
    assert len(alert) == 1 and "compromised-plugin" in alert[0]


def test_demo_shipping_and_analytics_filters_are_right() -> None:
    import random

    rng = random.Random(7)
    orders = [demo.make_order(rng, n) for n in range(1, 41)]
    got = demo.run(out=io.StringIO(), orders=40, seed=7)
    want_ship = [
        o["orderId"] for o in orders if o["total"] > demo.THRESHOLD and o["customer"]["country"] in demo.SHIP_TO
    ]
    want_analytics = [o["orderId"] for o in orders if o["customer"]["tier"] != "bronze"]
    assert got["shipping"] == want_ship
    assert got["analytics"] == want_analytics


def test_cli_demo_runs() -> None:
    r = subprocess.run([sys.executable, "-m", "sealbus", "demo"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "who got what" in r.stdout
