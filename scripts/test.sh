#!/usr/bin/env bash
# The whole test suite: install what the tests need, then fmt check, clippy -D warnings,
# and every test of every crate (real OpenBao, Postgres, Pushgateway; local stand-ins).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TERM_COLOR=never
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy --workspace --all-targets -- -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== scripts/image.sh (static build + image; the image and release tests use them)" >&2
bash scripts/image.sh
echo "== cargo test --workspace" >&2
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
echo "== all tests passed" >&2
