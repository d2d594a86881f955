"""The shared OrderPlaced workload (../shared/workloads/orders.py) for the benches.

One copy lives in the package (``sealbus.bench.workload``, so ``sealbus bench`` works
from an installed wheel) and one verbatim in ``tests/orders.py``;
``tests/test_bench_harness.py`` checks that both produce the same events.
"""

from sealbus.bench.workload import DEFECTS, SCHEMA, make_events, valid_event

__all__ = ["DEFECTS", "SCHEMA", "make_events", "valid_event"]
