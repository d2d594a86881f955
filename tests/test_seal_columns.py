"""The per-event attribute columns and offsets of `KeyRing.seal_batch`, in every form
the binding reads them (list, tuple, other sequences, a scalar, a buffer), checked
against `cryptography` through the byte layout of docs/FORMAT.md
(tests/seal_format.py): each frame's AAD binds exactly its own event's attributes."""

from __future__ import annotations

import array
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import seal_format as fmt
import sealbus
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sealbus.aead import pack, unpack


class _Ids(Sequence[str]):
    """A sequence that is neither a list nor a tuple."""

    def __init__(self, items: list[str]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: Any) -> Any:
        return self._items[i]


IDS = ["e-0", "é-1 ünïcode", "", "e-3-" + "x" * 60, "日本-4"]
TYPES = ["orders.placed", "orders.paid", "o", "orders.placed", "日本.t"]
SOURCES = ["checkout", "", "s", "checkout-2", "src"]
VERSIONS = [1, 0, 2**32 - 1, 7, 3]


def _ring(tmp_path: Path) -> tuple[sealbus.KeyRing, dict[str, bytes]]:
    path = tmp_path / "keys.json"
    ring = sealbus.KeyRing.create(path)
    doc = json.loads(path.read_text())
    return ring, {k["id"]: bytes.fromhex(k["key"]) for k in doc["keys"] if "key" in k}


def _check(
    frames: bytes, foffs: Any, keys: dict[str, bytes], payloads: list[bytes], attrs: list[tuple[str, str, str, int]]
) -> None:
    got = unpack(frames, foffs)
    assert len(got) == len(payloads)
    for frame, p, (eid, ty, src, ver) in zip(got, payloads, attrs, strict=True):
        f = fmt.parse(frame)
        aad = fmt.aad(fmt.AT_REST, f.key_id, eid, ty, src, ver)
        assert AESGCM(keys[f.key_id]).decrypt(f.nonce, f.sealed, aad) == p


@pytest.mark.parametrize("form", [list, tuple, _Ids])
def test_per_event_columns_in_every_sequence_form(tmp_path: Path, form: Any) -> None:
    ring, keys = _ring(tmp_path)
    payloads = [bytes([i]) * (i * 13) for i in range(len(IDS))]
    buf, offs = pack(payloads)
    frames, foffs = ring.seal_batch(
        buf, form(offs), event_ids=form(IDS), event_type=form(TYPES), source=form(SOURCES), schema_version=VERSIONS
    )
    _check(frames, foffs, keys, payloads, list(zip(IDS, TYPES, SOURCES, VERSIONS, strict=True)))


def test_shared_attributes_and_a_single_id(tmp_path: Path) -> None:
    ring, keys = _ring(tmp_path)
    payloads = [b"one payload"]
    buf, offs = pack(payloads)
    frames, foffs = ring.seal_batch(buf, offs, event_ids="only-é", event_type="t", source="s", schema_version=9)
    _check(frames, foffs, keys, payloads, [("only-é", "t", "s", 9)])
    # Shared columns over many events: each frame still binds its own id.
    payloads = [b"a", b"bb", b"ccc"]
    buf, offs = pack(payloads)
    for offsets in (
        offs,
        tuple(offs),
        array.array("Q", offs),
        memoryview(array.array("q", offs)),
        array.array("I", offs),
    ):
        frames, foffs = ring.seal_batch(buf, offsets, event_ids=IDS[:3], event_type="t", source="s", schema_version=2)
        _check(frames, foffs, keys, payloads, [(i, "t", "s", 2) for i in IDS[:3]])


@pytest.mark.parametrize(
    "ids",
    [["a", 1, "c"], ("a", b"b", "c"), _Ids(["a", None, "c"]), 5],  # type: ignore[list-item]
)
def test_an_id_that_is_not_a_str_is_refused_by_name(tmp_path: Path, ids: Any) -> None:
    ring, _ = _ring(tmp_path)
    buf, offs = pack([b"x", b"y", b"z"])
    with pytest.raises(sealbus.InvalidArgument, match="event_ids"):
        ring.seal_batch(buf, offs, event_ids=ids, event_type="t", source="s", schema_version=1)


@pytest.mark.parametrize("offsets", [[0, 1, -1], (0, -1), [0, "1"], array.array("q", [0, -1])])
def test_bad_offsets_are_refused_by_name(tmp_path: Path, offsets: Any) -> None:
    ring, _ = _ring(tmp_path)
    with pytest.raises(sealbus.InvalidArgument, match="offsets"):
        ring.seal_batch(
            b"ab", offsets, event_ids=["i"] * (len(offsets) - 1), event_type="t", source="s", schema_version=1
        )


def test_a_column_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    ring, _ = _ring(tmp_path)
    buf, offs = pack([b"x", b"y"])
    with pytest.raises(sealbus.InvalidArgument, match="event_type"):
        ring.seal_batch(buf, offs, event_ids=["a", "b"], event_type=["t"], source="s", schema_version=1)
    with pytest.raises(sealbus.InvalidArgument):
        ring.seal_batch(buf, offs, event_ids=["a"], event_type="t", source="s", schema_version=1)
