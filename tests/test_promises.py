"""Promises the documentation makes that nothing else checks: a revoked grant stops
read-back delivery, key material never reaches the log folder, bad key input never
echoes the key, and a principal's token must be presented whole."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sealbus
from sealbus import Router

KEY_HEX = "5eadbee5" * 8  # 32 bytes, easy to find in any text


def _forms(hex_key: str) -> list[str]:
    """The ways a key could show in text: hex either case, its raw bytes' repr."""
    raw = bytes.fromhex(hex_key)
    return [hex_key.lower(), hex_key.upper(), repr(raw)[2:-1], ", ".join(map(str, raw[:8]))]


def _assert_not_echoed(err: BaseException, hex_key: str) -> None:
    text = f"{err} {err!r} {err.args!r}"
    for form in _forms(hex_key):
        assert form not in text, f"the error shows the key: {text}"


def test_revoking_a_grant_stops_read_back_delivery(tmp_path: Path) -> None:
    router = Router(tmp_path / "log", allow_schemaless=True)
    p, c = router.principal("p"), router.principal("c")
    router.policy.allow_publish(p, "orders.*")
    router.policy.allow_subscribe(c, "orders.*")
    sub = router.subscribe(c, "orders.*", name="c", durable=True, max_pending=4)
    router.producer(p).publish_many("orders.placed", [{"n": i} for i in range(40)])
    first = sub.poll(4, 1.0)
    assert [m.data["n"] for m in first] == [0, 1, 2, 3]
    sub.ack(first)
    # 36 events are owed, most still only on disk: the window is 4 wide.
    assert router.policy.revoke_subscribe(c, "orders.*")
    assert sub.poll(100, 0.2) == [], "a revoked consumer still reads events back from the log"
    assert sub.poll(100, 0.2) == []
    # Granted again, it receives what is published from then on.
    router.policy.allow_subscribe(c, "orders.*")
    router.producer(p).publish("orders.placed", {"n": 40})
    assert [m.data["n"] for m in sub.poll(100, 1.0)][-1:] == [40]
    router.close()


def _key_file_hex(path: Path) -> list[str]:
    return [k["key"] for k in json.loads(path.read_text())["keys"] if "key" in k]


@pytest.mark.parametrize("source", ["file", "env"])
def test_key_material_never_reaches_the_log_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "env":
        monkeypatch.setenv("SEALBUS_KEYS", KEY_HEX)
        router = Router(tmp_path / "log", allow_schemaless=True)
        hexes = [KEY_HEX]
    else:
        router = Router(tmp_path / "log", allow_schemaless=True, keys=tmp_path / "ring.keys")
        router.keys.rotate()  # two keys: the retired one must not leak either
    p, c = router.principal("p"), router.principal("c")
    router.policy.allow_publish(p, "orders.*")
    router.policy.allow_subscribe(c, "orders.*")
    sub = router.subscribe(c, "orders.*", name="c", durable=True)
    router.producer(p).publish_many("orders.placed", [{"n": i} for i in range(50)])
    sub.ack(sub.poll(20, 1.0))
    router.close()
    if source == "file":
        router.keys.persist(tmp_path / "ring.keys")
        hexes = _key_file_hex(tmp_path / "ring.keys")
        assert len(hexes) == 2
    files = [f for f in (tmp_path / "log").rglob("*") if f.is_file()]
    assert any(f.suffix == ".journal" for f in files) and any(f.suffix == ".log" for f in files)
    stored = b"".join(f.read_bytes() for f in files)
    for h in hexes:
        raw = bytes.fromhex(h)
        assert raw not in stored and raw[:16] not in stored, "raw key bytes in the log folder"
        assert h.encode() not in stored and h.upper().encode() not in stored, "key hex in the log folder"


def _ring_doc(**key_fields: object) -> dict[str, object]:
    key = {"id": "k-0011223344556677", "state": "active", "created": 1, "key": KEY_HEX, **key_fields}
    return {"format": "sealbus-keyring", "version": 1, "active": "k-0011223344556677", "keys": [key]}


MALFORMED_FILES = {
    "short key": json.dumps(_ring_doc(key=KEY_HEX[:-2])),
    "key not hex": json.dumps(_ring_doc(key=KEY_HEX[:-2] + "zz")),
    "key as a number field": json.dumps(_ring_doc(created=KEY_HEX)),
    "key as the state": json.dumps(_ring_doc(state=KEY_HEX)),
    "key as the id": json.dumps(_ring_doc(id=KEY_HEX)),
    "key in an unknown field": json.dumps({**_ring_doc(), "format": KEY_HEX}),
    "truncated document": json.dumps(_ring_doc())[:-20],
    "bare hex": KEY_HEX + "\n",
}


@pytest.mark.parametrize("text", MALFORMED_FILES.values(), ids=MALFORMED_FILES.keys())
def test_malformed_key_files_never_echo_the_key(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.keys"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(sealbus.SealbusError) as e:
        sealbus.KeyRing.load(path)
    _assert_not_echoed(e.value, KEY_HEX)
    assert "bad.keys" in str(e.value), "the error names the file"


MALFORMED_ENV = {
    "short": KEY_HEX[:-1],
    "long": KEY_HEX + "0",
    "not hex": KEY_HEX[:-1] + "g",
    "spaces inside": KEY_HEX[:32] + " " + KEY_HEX[32:],
    "document with a bad field": json.dumps(_ring_doc(created=KEY_HEX)),
    "document with a short key": json.dumps(_ring_doc(key=KEY_HEX[:-2])),
}


@pytest.mark.parametrize("value", MALFORMED_ENV.values(), ids=MALFORMED_ENV.keys())
def test_malformed_env_keys_never_echo_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SEALBUS_KEYS", value)
    with pytest.raises(sealbus.SealbusError) as e:
        Router(tmp_path / "log", allow_schemaless=True)
    _assert_not_echoed(e.value, KEY_HEX)
    assert "SEALBUS_KEYS" in str(e.value), "the error names the variable"
    assert not (tmp_path / "log").exists() or not any((tmp_path / "log").iterdir()), "nothing stored half-way"


@pytest.mark.parametrize("cut", [0, 1, 16, 31])
def test_a_short_or_empty_token_is_refused(router: Router, cut: int) -> None:
    real = router.principal("checkout")
    router.policy.allow_publish(real, "orders.*")
    router.policy.allow_subscribe(real, "orders.*")
    assert router.producer(real).publish("orders.placed", {}).id
    short = sealbus.Principal("checkout", real._token[:cut], id(router))
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(short).publish("orders.placed", {})
    with pytest.raises(sealbus.PolicyDenied):
        router.subscribe(short, "orders.*")
    longer = sealbus.Principal("checkout", real._token + b"\0", id(router))
    with pytest.raises(sealbus.PolicyDenied):
        router.producer(longer).publish("orders.placed", {})


def test_environment_key_is_the_documented_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALBUS_KEYS", KEY_HEX)
    router = Router(tmp_path / "log", allow_schemaless=True)
    assert router.key_source == "environment variable SEALBUS_KEYS"
    assert KEY_HEX not in repr(router) + repr(router.keys)
    router.close()
    # The router's identity (it signs the audit trail) sits beside the log; no key file.
    assert sorted(os.listdir(tmp_path)) == ["log", "log.identity"], "no key file is written for an environment key"
