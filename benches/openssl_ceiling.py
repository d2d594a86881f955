"""The single-core ceiling: `openssl speed -evp aes-256-gcm` at one payload size.

    python benches/openssl_ceiling.py [--bytes 256] [--seconds 3]

prints the rate in MB/s (10^6 bytes per second). `openssl speed` runs one process on
one core unless told `-multi`, so this is the single-core figure.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess

_ROW = re.compile(r"^aes-256-gcm\s+([\d.]+)k\s*$", re.IGNORECASE | re.MULTILINE)


def parse_rate(output: str) -> float:
    """Bytes per second from `openssl speed -bytes N` output (one column, in 1000s of
    bytes per second). Raises ValueError if the row is missing."""
    m = _ROW.search(output)
    if not m:
        raise ValueError("no 'AES-256-GCM <rate>k' row in openssl speed output")
    return float(m.group(1)) * 1000.0


def openssl_rate(size: int = 256, seconds: int = 3) -> float | None:
    """Bytes per second for AES-256-GCM at `size` bytes, or None without openssl."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    out = subprocess.run(
        [exe, "speed", "-evp", "aes-256-gcm", "-bytes", str(size), "-seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds * 4 + 30,
    )
    return parse_rate(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bytes", type=int, default=256)
    ap.add_argument("--seconds", type=int, default=3)
    a = ap.parse_args()
    rate = openssl_rate(a.bytes, a.seconds)
    print("openssl not found" if rate is None else f"{rate / 1e6:.1f} MB/s at {a.bytes} B")


if __name__ == "__main__":
    main()
