"""A router's Ed25519 identity and its file; the bridge's message format on its own."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sealbus
from hypothesis import given, settings
from hypothesis import strategies as st
from sealbus._sealbus import new_event_ids
from sealbus.nats import Identity, IdentityFileError, SignatureRefused, WireError
from sealbus.nats.identity import verify
from sealbus.nats.wire import Outgoing, decode, decode_runs, encode

EVENT_ID = "01a24ac5-5e26-7715-a7e9-86e7c0a3893a"


def test_load_or_create_keeps_one_identity_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "router.identity"
    first = Identity.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Identity.load_or_create(path)
    assert again.public_bytes == first.public_bytes
    assert len(first.public_bytes) == 32
    sig = first.sign(b"m")
    assert verify(again.public_bytes, sig, b"m")
    assert not verify(again.public_bytes, sig, b"n")
    assert not verify(Identity.generate().public_bytes, sig, b"m")


def test_a_readable_or_damaged_identity_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "router.identity"
    Identity.load_or_create(path)
    secret = path.read_bytes().split(b"\n")[1].decode()
    os.chmod(path, 0o644)
    with pytest.raises(IdentityFileError, match="mode 0644"):
        Identity.load_or_create(path)
    os.chmod(path, 0o600)
    path.write_bytes(b"sealbus-identity-v1\n" + secret[:-1].encode() + b"zz\n")
    with pytest.raises(IdentityFileError) as info:
        Identity.load_or_create(path)
    assert secret[:16] not in str(info.value) and secret[-16:-1] not in str(info.value)


def test_repr_never_shows_the_private_key(tmp_path: Path) -> None:
    path = tmp_path / "router.identity"
    ident = Identity.load_or_create(path)
    secret = path.read_bytes().split(b"\n")[1].decode()
    assert secret[:8] not in repr(ident)
    assert ident.public_bytes.hex()[:16] in repr(ident)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(ident)


def _message(ring: sealbus.KeyRing, ident: Identity, data: object = None) -> tuple[bytes, dict[str, str]]:
    event = {
        "specversion": "1.0",
        "id": EVENT_ID,
        "source": "checkout",
        "type": "orders.placed",
        "time": "2026-01-01T00:00:00Z",
        "subject": "customer-4711",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "data": {"a": 1} if data is None else data,
    }
    item = Outgoing(EVENT_ID, 2, json.dumps(event).encode())
    return encode("shop-a", "orders.placed", [item], ring, ident)


def test_a_message_round_trips_with_its_attributes_sealed() -> None:
    ring, ident = sealbus.KeyRing.generate(), Identity.generate()
    body, headers = _message(ring, ident)
    assert b"customer-4711" not in body and b'"a"' not in body
    signed = decode("sealbus.orders.placed", body, headers, {"shop-a": ident.public_bytes}, ring)
    (ev,) = signed.events
    assert (signed.router, signed.event_type, signed.schema_versions) == ("shop-a", "orders.placed", [2])
    assert (ev.id, ev.source, ev.subject, ev.kind, ev.data) == (EVENT_ID, "checkout", "customer-4711", "json", {"a": 1})
    assert ev.traceparent is not None and ev.traceparent.startswith("00-0af765")
    body, headers = _message(ring, ident, data=None)
    binary = json.loads(
        sealbus.Event.from_json(
            json.dumps(
                {"specversion": "1.0", "id": EVENT_ID, "source": "s", "type": "orders.placed", "data_base64": "AAE="}
            )
        ).to_json()
    )
    item = Outgoing(EVENT_ID, None, json.dumps(binary).encode())
    body, headers = encode("shop-a", "orders.placed", [item], ring, ident)
    (ev,) = decode("sealbus.orders.placed", body, headers, {"shop-a": ident.public_bytes}, ring).events
    assert (ev.kind, ev.data_bytes) == ("binary", b"\x00\x01")


def test_another_subject_another_key_or_an_unknown_router_is_refused() -> None:
    ring, ident = sealbus.KeyRing.generate(), Identity.generate()
    body, headers = _message(ring, ident)
    trust = {"shop-a": ident.public_bytes}
    with pytest.raises(SignatureRefused):
        decode("sealbus.orders.cancelled", body, headers, trust, ring)
    with pytest.raises(SignatureRefused):
        decode("sealbus.orders.placed", body, headers, {"shop-a": Identity.generate().public_bytes}, ring)
    with pytest.raises(SignatureRefused):
        decode("sealbus.orders.placed", body, headers, {"shop-b": ident.public_bytes}, ring)
    with pytest.raises(SignatureRefused):
        decode("sealbus.orders.placed", body, {}, trust, ring)
    # Signed by the trusted router, sealed under a transit key this router lacks.
    with pytest.raises(sealbus.KeyNotFound):
        decode("sealbus.orders.placed", body, headers, trust, sealbus.KeyRing.generate())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_change_or_truncation_of_a_message_is_refused(data: st.DataObject) -> None:
    ring, ident = _fixed
    body, headers = _body
    at = data.draw(st.integers(0, len(body) - 1))
    if data.draw(st.booleans()):
        changed = body[:at] + bytes([body[at] ^ data.draw(st.integers(1, 255))]) + body[at + 1 :]
    else:
        changed = body[:at]
    with pytest.raises((WireError, sealbus.IntegrityError)):
        decode("sealbus.orders.placed", changed, headers, {"shop-a": ident.public_bytes}, ring)


_fixed = (sealbus.KeyRing.generate(), Identity.generate())
_body = _message(*_fixed)


_ATTRS = st.fixed_dictionaries(
    {},
    optional={
        "subject": st.sampled_from(["o-1", "o-2", 'caf\u00e9 "x"']),
        "traceparent": st.just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    },
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["checkout", "billing"]), _ATTRS, st.sampled_from([None, 1, 2]), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_columns_and_runs_agree_with_the_events(
    specs: list[tuple[str, dict[str, str], int | None, bool]],
) -> None:
    """What an importer publishes a run at a time: consecutive events sharing producer,
    attributes and schema version form one run, and each event keeps its own data."""
    ring, ident = _fixed
    items = []
    for n, (source, attrs, version, binary) in enumerate(specs):
        event_id = new_event_ids(1)[0]
        ev: dict[str, object] = {"specversion": "1.0", "id": event_id, "source": source, "type": "orders.placed"}
        ev.update(attrs)
        if binary:
            ev["data_base64"] = "AAE="
        else:
            ev["data"] = {"n": n}
        items.append(Outgoing(event_id, version, json.dumps(ev).encode()))
    body, headers = encode("shop-a", "orders.placed", items, ring, ident)
    trust = {"shop-a": ident.public_bytes}
    events = decode("sealbus.orders.placed", body, headers, trust, ring).events
    cols = decode_runs("sealbus.orders.placed", body, headers, trust, ring)
    assert cols.ids == [ev.id for ev in events]
    datas = [cols.data[cols.offsets[i] : cols.offsets[i + 1]] for i in range(len(events))]
    assert datas == [ev.data_bytes for ev in events]
    expected: list[tuple[object, ...]] = []
    for i, ev in enumerate(events):
        version = items[i].schema_version
        key = (ev.source, ev.kind, ev.subject, ev.traceparent, ev.dataschema, ev.datacontenttype, version)
        if expected and expected[-1][1:] == key:
            expected[-1] = (i + 1, *key)
        else:
            expected.append((i + 1, *key))
    assert cols.runs == expected


def test_columns_refuse_an_event_that_does_not_match_its_header() -> None:
    ring, ident = _fixed
    event = {"specversion": "1.0", "id": EVENT_ID, "source": "s", "type": "orders.cancelled", "data": 1}
    item = Outgoing(EVENT_ID, None, json.dumps(event).encode())
    body, headers = encode("shop-a", "orders.placed", [item], ring, ident)
    with pytest.raises(WireError):
        decode_runs("sealbus.orders.placed", body, headers, {"shop-a": ident.public_bytes}, ring)
