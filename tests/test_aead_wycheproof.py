"""Every Wycheproof AES-GCM vector, valid and invalid, against sealbus.aead.AesGcm.

sealbus's AES-GCM (ring) takes 128- and 256-bit keys and 96-bit nonces only, the
sizes NIST SP 800-38D recommends and the only ones sealbus uses. For the other
vectors (AES-192, 0/8..2056-bit IVs) the right behaviour is to refuse the parameters
with InvalidArgument, never to compute something else; the oracle (`cryptography`)
is checked to accept those vectors so we know the refusal is ours.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sealbus import IntegrityError, InvalidArgument
from sealbus.aead import AesGcm

DATA = json.loads(
    (Path(__file__).parent / "vectors" / "wycheproof" / "aes_gcm_test.json").read_text()
)
CASES = [(g, t) for g in DATA["testGroups"] for t in g["tests"]]


def test_all_vectors_are_collected() -> None:
    assert len(CASES) == DATA["numberOfTests"] == 316


def _supported(g: dict[str, Any]) -> bool:
    return g["keySize"] in (128, 256) and g["ivSize"] == 96 and g["tagSize"] == 128


@pytest.mark.parametrize(("group", "case"), CASES, ids=[f"tc{t['tcId']}" for _, t in CASES])
def test_vector(group: dict[str, Any], case: dict[str, Any]) -> None:
    key, iv, aad, msg, ct, tag = (
        bytes.fromhex(case[k]) for k in ("key", "iv", "aad", "msg", "ct", "tag")
    )
    if not _supported(group):
        with pytest.raises(InvalidArgument):
            AesGcm(key).encrypt(iv, msg, aad)
        with pytest.raises(InvalidArgument):
            AesGcm(key).decrypt(iv, ct + tag, aad)
        if 8 <= len(iv) <= 128:  # the sizes cryptography accepts
            oracle_ok = True
            try:
                AESGCM(key).decrypt(iv, ct + tag, aad)
            except InvalidTag:
                oracle_ok = False
            assert oracle_ok == (case["result"] == "valid")
        return
    aes = AesGcm(key)
    if case["result"] == "valid":
        assert aes.encrypt(iv, msg, aad) == ct + tag
        assert aes.decrypt(iv, ct + tag, aad) == msg
        # and the batch path agrees with the single one
        out, offs = aes.encrypt_batch(iv * 2, msg + msg, [0, len(msg), 2 * len(msg)], aads=aad)
        assert out == (ct + tag) * 2
        assert list(offs) == [0, len(ct) + 16, 2 * (len(ct) + 16)]
    else:
        assert case["result"] == "invalid"
        with pytest.raises(IntegrityError):
            aes.decrypt(iv, ct + tag, aad)
        with pytest.raises(IntegrityError):
            aes.decrypt_batch(iv, ct + tag, [0, len(ct) + 16], aads=[aad])
