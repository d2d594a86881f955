#!/usr/bin/env bash
# Single-core AES-256-GCM ceiling at 256-byte payloads, in MB/s (see openssl_ceiling.py).
set -euo pipefail
exec python3 "$(dirname "$0")/openssl_ceiling.py" --bytes "${1:-256}" --seconds "${2:-3}"
