#!/usr/bin/env bash
# nightly-report benchmark (spec §9): release build, loopback fixtures (real Pushgateway, the
# HTTPS API fixture, the Slack stand-in); writes target/bench/nightly-report.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p nightly-report --bins --locked
cargo run --release -p nightly-report --example bench --locked -- \
  "$PWD/target/release/nightly-report" "$PWD/target/bench/nightly-report.md"
