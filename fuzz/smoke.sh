#!/usr/bin/env bash
# Smoke-runs the recording reader's fuzz target for a short time (default 20 s), from the
# committed seeds, so that CI catches a reader that panics, loops or blows up on bad bytes.
# Needs a nightly toolchain; installs cargo-fuzz if it is missing.
#   fuzz/smoke.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# The portwatch crate embeds the eBPF object: it must have been built (cargo xtask build-ebpf).
mkdir -p corpus/record_reader
cargo +nightly fuzz run record_reader corpus/record_reader seeds/record_reader -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
