#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, seeded with the example plans, and stops at the first crash.
# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 lets the stable toolchain use them.
# Needs: cargo install cargo-fuzz; a C++ compiler (libFuzzer is built from source).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
mkdir -p corpus/plan_parse corpus/histogram_decode corpus/agent_messages
cp -n ../examples/*.toml corpus/plan_parse/ 2>/dev/null || true
for target in plan_parse histogram_decode agent_messages; do
  echo "== $target: ${seconds}s"
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536
done
