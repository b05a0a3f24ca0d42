#!/usr/bin/env bash
# Image benchmark (issue 16): the cold static build of every binary (crt-static, release
# profile, fresh target dir target/bench-static so the dev and image builds are untouched),
# the image assembly alone (scripts/image.sh --binary, twice inside), and the sizes: the
# multicall binary, the image uncompressed (the layer tar) and the archive.
# Writes target/bench/homelab-ops-image.md. Slow on purpose: a cold build is what CI pays.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=x86_64-unknown-linux-gnu
dir=target/bench-static
pkgs=(-p homelab-ops --features homelab-ops/multicall -p vault-token-renew -p t3-migrate-idle -p goldmane-edge-aggregator -p edges-digest -p compat-gate -p nightly-report)
rm -rf "$dir"
t0=$(date +%s.%N)
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$PWD=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
  cargo build --release --locked --target "$target" --target-dir "$dir" "${pkgs[@]}" --bins >/dev/null 2>&1
t1=$(date +%s.%N)
bin=$dir/$target/release/homelab-ops
out=$(mktemp -d /tmp/image-bench.XXXXXX)
trap 'rm -rf "$out"' EXIT
t2=$(date +%s.%N)
report=$(bash scripts/image.sh --binary "$bin" --out "$out")
t3=$(date +%s.%N)
size=$(sed -n 's/^size: \([0-9]*\) bytes.*/\1/p' <<<"$report")
mib() { awk -v s="$1" 'BEGIN { printf "%.2f", s / 1048576 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }
load=$(cut -d' ' -f1 /proc/loadavg)
cat >"target/bench/homelab-ops-image.md" <<MD
| figure | target | measured | ratio / ok |
|---|---|---|---|
| cold static build, 7 binaries + docs tool (s) | CI ≤ 90 min total | $(secs "$t0" "$t1") | load average $load at the end |
| image assembly, twice + compare (s) | cheap | $(secs "$t2" "$t3") | ok |
| multicall binary, static-pie (MiB) | — | $(mib "$(stat -c %s "$bin")") | — |
| image uncompressed (MiB) | ≤ 16 | $(mib "$size") | $(awk -v s="$size" 'BEGIN { printf "%.2f", s / 16777216 }') of target |
| image archive, gzip layer (MiB) | — | $(mib "$(stat -c %s "$out/homelab-ops.oci.tar")") | — |

Cold build in a fresh target dir with \`-C target-feature=+crt-static\` (static-pie) and the
workspace release profile (fat LTO, codegen-units 1) on $(nproc) cores shared with other work.
MD
rm -rf "$dir"
