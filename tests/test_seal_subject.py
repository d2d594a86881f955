"""Router(path, seal_subject=True) keeps the CloudEvents subject out of the log's
bytes (sealed like the data), still hands it to consumers, and refuses patterns on
it. Without it the subject is stored in the clear, as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import sealbus
from sealbus import Router

SUBJECT = "customer-4711-alice@example.com"
SECRET = "iban-DE89-3704-0044-0532-0130-00"


def open_shop(folder: Path, **kw: object) -> tuple[Router, sealbus.Producer, sealbus.Principal]:
    router = Router(folder, allow_schemaless=True, keys=folder.with_name("keys"), **kw)  # type: ignore[arg-type]
    checkout, analytics = router.principal("checkout"), router.principal("analytics")
    router.policy.allow_publish(checkout, "orders.*")
    router.policy.allow_subscribe(analytics, "orders.*")
    return router, router.producer(checkout), analytics


def on_disk(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_the_subject_is_in_the_clear_by_default(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    router, prod, _ = open_shop(folder)
    prod.publish("orders.placed", {"iban": SECRET}, subject=SUBJECT)
    router.close()
    disk = on_disk(folder)
    assert SECRET.encode() not in disk
    assert SUBJECT.encode() in disk


def test_a_sealed_subject_never_reaches_the_disk_and_still_reaches_consumers(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    router, prod, analytics = open_shop(folder, seal_subject=True)
    live = router.subscribe(analytics, "orders.*")
    router.subscribe(analytics, "orders.*", name="offline", durable=True).close()
    prod.publish_many("orders.placed", [{"iban": SECRET, "n": i} for i in range(3)], subject=SUBJECT)
    prod.publish("orders.placed", {"n": 3})
    assert [m.event.subject for m in live.poll(10, 1.0)] == [SUBJECT] * 3 + [None]
    router.close()
    disk = on_disk(folder)
    assert SUBJECT.encode() not in disk
    assert SECRET.encode() not in disk

    # Read back from the log: by the offline consumer, and by a replay, with or
    # without the option (the record says what is sealed; the key ring opens it).
    for seal_subject in (True, False):
        router, prod, analytics = open_shop(folder, seal_subject=seal_subject)
        sub = router.subscribe(analytics, "orders.*", name="offline", durable=True)
        msgs = sub.poll(10, 1.0)
        assert [(m.event.subject, m.data["n"]) for m in msgs] == [(SUBJECT, 0), (SUBJECT, 1), (SUBJECT, 2), (None, 3)]
        assert [e.subject for e in router.replay(analytics, "orders.*")] == [SUBJECT] * 3 + [None]
        sub.close()
        router.close()


def test_patterns_on_a_sealed_subject_are_refused(tmp_path: Path) -> None:
    router, _prod, analytics = open_shop(tmp_path / "log", seal_subject=True)
    pattern = {"subject": [{"prefix": "customer-"}]}
    with pytest.raises(sealbus.PatternError) as err:
        router.subscribe(analytics, "orders.*", pattern=pattern)
    assert err.value.path == "subject"
    with pytest.raises(sealbus.PatternError):
        list(router.replay(analytics, "orders.*", pattern=pattern))
    # Other attributes and the data stay matchable.
    router.subscribe(analytics, "orders.*", pattern={"source": ["checkout"], "data": {"n": [1]}}).close()
    router.close()


def test_seal_subject_needs_a_sealing_durable_router(tmp_path: Path) -> None:
    with pytest.raises(sealbus.InvalidArgument):
        Router(seal_subject=True)
    with pytest.raises(sealbus.InvalidArgument):
        Router(tmp_path / "log", seal="none", seal_subject=True)
