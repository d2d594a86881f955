"""A durable consumer belongs to the principal that created it: another principal,
even one allowed the same types, cannot resume it under its name, online or
offline, before or after a restart, and nothing of the consumer moves."""

from __future__ import annotations

from pathlib import Path

import pytest
import sealbus
from sealbus import PolicyDenied, Router
from sealbus._sealbus import CursorStore


def shop(folder: Path) -> tuple[Router, sealbus.Producer, sealbus.Principal, sealbus.Principal]:
    router = Router(folder, allow_schemaless=True, seal="none")
    checkout = router.principal("checkout")
    analytics, mallory = router.principal("analytics"), router.principal("mallory")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_subscribe(analytics, "orders.*")
    router.policy.allow_subscribe(mallory, "orders.*")
    return router, router.producer(checkout), analytics, mallory


def journal(folder: Path) -> Path:
    return folder / "cursors" / "cursors.journal"


def test_another_principal_cannot_take_over_an_offline_consumer(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    router, prod, analytics, mallory = shop(folder)
    router.subscribe(analytics, "orders.*", name="analytics", durable=True).close()
    prod.publish_many("orders.placed", [{"n": i} for i in range(5)])
    before = journal(folder).read_bytes()
    with pytest.raises(PolicyDenied) as err:
        router.subscribe(mallory, "orders.*", name="analytics", durable=True)
    assert err.value.principal == "mallory" and err.value.action == "subscribe"
    assert "analytics" in str(err.value)
    assert journal(folder).read_bytes() == before
    router.close()

    # After a restart the owner is read back from the cursor journal.
    router, prod, analytics, mallory = shop(folder)
    with pytest.raises(PolicyDenied):
        router.subscribe(mallory, "orders.*", name="analytics", durable=True, start="earliest")
    sub = router.subscribe(analytics, "orders.*", name="analytics", durable=True)
    msgs = sub.poll(100, 1.0)
    assert [m.data["n"] for m in msgs] == [0, 1, 2, 3, 4]
    assert sub.ack(msgs) == 5
    router.close()


def test_an_open_consumer_is_refused_as_a_policy_matter_not_a_name_clash(tmp_path: Path) -> None:
    router, prod, analytics, mallory = shop(tmp_path / "log")
    sub = router.subscribe(analytics, "orders.*", name="analytics", durable=True)
    with pytest.raises(PolicyDenied):
        router.subscribe(mallory, "orders.*", name="analytics", durable=True)
    # Its owner opening it twice is a mistake of its own, said as such.
    with pytest.raises(sealbus.InvalidArgument):
        router.subscribe(analytics, "orders.*", name="analytics", durable=True)
    prod.publish("orders.placed", {"n": 1})
    assert [m.data["n"] for m in sub.poll(10, 1.0)] == [1]
    # A name is only owned as a durable consumer: others may use it for ephemeral ones.
    router.subscribe(mallory, "orders.*", name="analytics").close()
    router.close()


def test_a_cursor_file_without_an_owner_is_adopted_by_the_first_to_resume_it(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    router, prod, analytics, mallory = shop(folder)
    prod.publish_many("orders.placed", [{"n": i} for i in range(3)])
    router.close()
    # As an older version wrote it: format version 1, no owner.
    CursorStore(folder / "cursors").save("legacy", 1)
    assert CursorStore(folder / "cursors").load("legacy")["owner"] is None  # type: ignore[index]

    router, prod, analytics, mallory = shop(folder)
    sub = router.subscribe(analytics, "orders.*", name="legacy", durable=True)
    # Recorded at once: read while the router is open.
    assert CursorStore(folder / "cursors", read_only=True).load("legacy")["owner"] == "analytics"  # type: ignore[index]
    assert [m.data["n"] for m in sub.poll(10, 1.0)] == [1, 2]
    sub.close()
    with pytest.raises(PolicyDenied):
        router.subscribe(mallory, "orders.*", name="legacy", durable=True)
    router.close()
