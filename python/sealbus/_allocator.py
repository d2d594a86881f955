"""Tuning for the extension's allocator, applied once before it is loaded.

The Rust core allocates with mimalloc, which reads its options from the environment
when the extension is loaded. mimalloc 2 returned freed memory to the OS after 10 ms
by default; the publish path frees and re-allocates batch buffers of a few hundred KiB
every few milliseconds, so each batch faulted fresh (huge) pages in and zeroed them
again: ~10% of the CPU of a durable run. mimalloc 3 (the one built now) waits 1 s by
default. That is still too short for consumers that drain in bursts: with 10,000
durable consumers each taking its share of the last batches every second or two, the
memory the burst freed (events, the routed batches) was returned before the next
publishes and faulted back in zeroed, ~15-25% of their CPU (perf: `clear_page_erms`
under `mi_page_free_list_extend`); with 10 s it is reused (fanout bench: 12 -> 8.5 s
of CPU per million events). The cost is RSS: memory a burst freed stays resident
for up to 10 s, never more than the burst's own peak.
The variable is set only for the load and then removed again, so the process
environment (and its children) is left as it was; a value the user set
(``MIMALLOC_PURGE_DELAY``) wins.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

_OPTION = "MIMALLOC_PURGE_DELAY"
#: How long freed memory stays resident before mimalloc returns it (unless the user
#: set the variable).
PURGE_DELAY_MS = 10_000


def _load_extension() -> ModuleType:
    """Import ``sealbus._sealbus`` with the allocator tuned."""
    if _OPTION in os.environ:
        return importlib.import_module("sealbus._sealbus")
    os.environ[_OPTION] = str(PURGE_DELAY_MS)
    try:
        return importlib.import_module("sealbus._sealbus")
    finally:
        del os.environ[_OPTION]


_load_extension()
