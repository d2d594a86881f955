# A new engineer needs no oral tradition: these are the everyday commands.
.PHONY: dev test test-rust test-py lint fmt bench bench-full crash-long powerloss-long fuzz stubtest

dev:            ## build the extension into the active virtualenv
	maturin develop --release

test: test-rust test-py

test-rust:
	cargo test -p sealbus-core -p sealbus-nats --release

test-py:
	python -m pytest

lint:
	cargo fmt --all -- --check
	cargo clippy -p sealbus-core -p sealbus-nats -p sealbus-py --all-targets -- -D warnings
	ruff check python tests benches
	ruff format --check python tests benches
	mypy
	python -m mypy.stubtest sealbus._sealbus --allowlist .stubtest-allowlist

stubtest:
	python -m mypy.stubtest sealbus._sealbus --allowlist .stubtest-allowlist

fmt:
	cargo fmt --all
	ruff format python tests benches

bench:          ## pytest-benchmark suites, timed (medians against same-run baselines)
	python -m pytest benches --benchmark-enable --benchmark-only --benchmark-columns=median,ops,rounds

bench-full:     ## the end-to-end harness, with NATS JetStream as the same-run baseline
	sealbus bench --full

crash-long:     ## thousands of SIGKILL iterations against the durable log
	SEALBUS_CRASH_ITERS=3000 python -m pytest -s -m slow tests/test_log_crash.py

powerloss-long: ## thousands of power cuts on the forgetful FUSE file system (needs fuse3)
	SEALBUS_POWERLOSS_CUTS=2000 python -m pytest -s tests/test_powerloss.py

FUZZ_TARGETS = frame_decode keyring_open stored_decode keyfile_decode trail_decode pattern_parse pattern_scan schema_tape schema_fast
FUZZ_SECONDS ?= 300

fuzz:           ## needs cargo-fuzz and a nightly toolchain; FUZZ_SECONDS per target
	cd rust/sealbus-core && for t in $(FUZZ_TARGETS); do \
		cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; done
