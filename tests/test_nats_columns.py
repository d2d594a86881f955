"""The bridge's column paths against simple reference models: the wire codec with
mixed id lengths and schema versions, and the importer's memory of seen event ids."""

from __future__ import annotations

import base64
import hashlib
import json
import struct

import pytest
import sealbus
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sealbus.nats import Identity, WireError
from sealbus.nats.wire import Outgoing, decode, decode_runs, encode, encode_columns

_RING, _IDENT = sealbus.KeyRing.generate(), Identity.generate()
_TRUST = {"shop-a": _IDENT.public_bytes}


def _item(event_id: str, version: int | None, n: int) -> Outgoing:
    ev = {"specversion": "1.0", "id": event_id, "source": "checkout", "type": "orders.placed", "data": {"n": n}}
    return Outgoing(event_id, version, json.dumps(ev).encode())


def _specs(id_len: int, events: int) -> st.SearchStrategy[list[tuple[str, int | None]]]:
    """Distinct event ids of up to ``id_len`` characters, each with a schema version
    or none, for up to ``events`` events."""
    return st.lists(
        st.tuples(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=id_len),
            st.sampled_from([None, 0, 1, 7]),
        ),
        min_size=1,
        max_size=events,
        unique_by=lambda t: t[0],
    )


@settings(max_examples=100, deadline=None)
@given(_specs(40, 20))
def test_ids_and_versions_cross_the_wire_as_they_were(specs: list[tuple[str, int | None]]) -> None:
    items = [_item(event_id, version, n) for n, (event_id, version) in enumerate(specs)]
    body, headers = encode("shop-a", "orders.placed", items, _RING, _IDENT)
    signed = decode("sealbus.orders.placed", body, headers, _TRUST, _RING)
    assert [ev.id for ev in signed.events] == [i.id for i in items]
    assert signed.schema_versions == [i.schema_version for i in items]
    assert [ev.data for ev in signed.events] == [{"n": n} for n in range(len(items))]
    cols = decode_runs("sealbus.orders.placed", body, headers, _TRUST, _RING)
    assert cols.ids == [i.id for i in items]


@pytest.mark.parametrize(("event_id", "reason"), [("x" * 256, "longer than 255"), ("caf\u00e9", "not ASCII")])
def test_an_id_the_wire_cannot_carry_is_refused_before_sealing(event_id: str, reason: str) -> None:
    blob = json.dumps({"specversion": "1.0", "id": event_id, "source": "s", "type": "orders.placed"}).encode()
    with pytest.raises(WireError, match=reason):
        encode_columns("shop-a", "orders.placed", blob, [0, len(blob)], [event_id], [None], _RING, _IDENT)


@settings(max_examples=50, deadline=None)
@given(_specs(255, 12))  # ids up to 255 bytes: the one-byte length column at its limit
def test_the_body_is_laid_out_as_documented(specs: list[tuple[str, int | None]]) -> None:
    """A reference reader of the documented layout, written with ``struct``, finds the
    columns the encoder was given; each frame opens under the transit ring bound to
    its event, and the signature covers the subject and the body's SHA-256."""
    items = [_item(event_id, version, n) for n, (event_id, version) in enumerate(specs)]
    body, headers = encode("shop-a", "orders.placed", items, _RING, _IDENT)
    at = 0

    def take(k: int) -> bytes:
        nonlocal at
        at += k
        return body[at - k : at]

    assert take(4) == b"SBX1"
    assert take(struct.unpack(">H", take(2))[0]) == b"shop-a"
    assert take(struct.unpack(">H", take(2))[0]) == b"orders.placed"
    (n,) = struct.unpack(">I", take(4))
    assert n == len(items)
    wire_versions = struct.unpack(f">{n}I", take(4 * n))
    assert list(wire_versions) == [0 if i.schema_version is None else i.schema_version + 1 for i in items]
    lengths = struct.unpack(f">{n}I", take(4 * n))
    id_lengths = take(n)
    ids = []
    for k in id_lengths:
        ids.append(take(k).decode("ascii"))
    assert ids == [i.id for i in items]
    frames = []
    for k in lengths:
        frames.append(take(k))
    assert at == len(body)
    for frame, item in zip(frames, items, strict=True):
        plain = _RING.open(
            frame,
            event_id=item.id,
            event_type="orders.placed",
            source="shop-a",
            schema_version=item.schema_version or 0,
        )
        assert plain == item.cloudevent
    signed = b"sealbus.bridge.v1\x00sha256\x00sealbus.orders.placed\x00" + hashlib.sha256(body).digest()
    signature = base64.b64decode(headers["Sealbus-Signature"])
    Ed25519PublicKey.from_public_bytes(_IDENT.public_bytes).verify(signature, signed)
    assert headers["Nats-Msg-Id"] == f"shop-a.{items[0].id}.{n}"
