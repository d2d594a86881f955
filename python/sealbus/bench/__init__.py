"""``sealbus bench``: the end-to-end benchmark harness and its NATS JetStream baseline.

Run ``sealbus bench --help``; the scenarios live in :mod:`sealbus.bench.harness`, the
baseline in :mod:`sealbus.bench.nats_baseline`, the payloads in
:mod:`sealbus.bench.workload`.
"""
