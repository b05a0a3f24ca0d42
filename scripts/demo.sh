#!/usr/bin/env bash
# The demo: install what is needed, build release binaries, start real local components and
# run every binary's scenario (scripts/demo.d/*.sh, in name order), then print a summary table.
# Exits non-zero when any scenario fails; tears everything down on exit or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh
# The stand-ins the scenarios use (fake-kube, goldmane-sim, slack-capture) are testkit binaries
# behind its features; building them here keeps the scenarios free of compile steps.
BUILD=(cargo build --release --workspace --bins --locked --features "testkit/tls,testkit/goldmane")
echo "== building release binaries (${BUILD[*]})" >&2
BUILD_LOG=$(mktemp /tmp/homelab-build.XXXXXX.log)
# Progress (one line per crate) while building; the full log is printed only on failure.
if ! "${BUILD[@]}" 2>&1 | tee "$BUILD_LOG" |
  { grep --line-buffered -E '^\s*(Compiling|Finished)' || true; } | sed -u 's/^/   /' >&2; then
  cat "$BUILD_LOG" >&2
  echo "demo: release build failed (full log above)" >&2
  exit 1
fi
rm -f "$BUILD_LOG"
export DEMO_BIN="$ROOT/target/release"
DEMO_TMP=$(mktemp -d /tmp/homelab-demo.XXXXXX)
export DEMO_TMP
chmod 755 "$DEMO_TMP"
PIDS=()
# shellcheck disable=SC2015,SC2317 # run by the EXIT trap; `A && B || true` is meant
cleanup() {
  for f in "$DEMO_TMP"/*.cleanup; do [ -f "$f" ] && bash "$f" >/dev/null 2>&1 || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$DEMO_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source "$ROOT/scripts/demo-lib.sh"

RESULTS=()
shopt -s nullglob
scenarios=("$ROOT"/scripts/demo.d/*.sh)
if ((${#scenarios[@]} == 0)); then
  echo "no binary scenarios yet (scripts/demo.d is empty): the foundation only" >&2
fi
for s in "${scenarios[@]}"; do
  name=$(basename "$s" .sh)
  echo
  echo "==================== ${name#*-} ===================="
  start=$(date +%s.%N)
  # shellcheck source=/dev/null # each scenario is checked on its own
  if ( source "$s" ); then res=PASS; else res=FAIL; fi
  end=$(date +%s.%N)
  RESULTS+=("${name#*-}|$(cat "$DEMO_TMP/$name.scenario" 2>/dev/null || echo "${name#*-}")|$res|$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1fs", b-a}')")
done
echo
# Pad by characters, not bytes: scenario texts carry arrows (→) and the like.
export LC_ALL=C.UTF-8
w=8
for r in "${RESULTS[@]:-}"; do IFS="|" read -r _ sc _ _ <<<"$r"; if ((${#sc} > w)); then w=${#sc}; fi; done
printf "%-26s | %-${w}s | %-6s | %s\n" binary scenario result "wall time"
printf '%s-+-%s-+-%s-+-%s\n' "$(printf '%.0s-' {1..26})" "$(printf "%${w}s" '' | tr ' ' -)" ------ ---------
fail=0
for r in "${RESULTS[@]:-}"; do
  [ -n "$r" ] || continue
  IFS='|' read -r b sc res t <<<"$r"
  printf "%-26s | %s%*s | %-6s | %s\n" "$b" "$sc" $((w - ${#sc})) '' "$res" "$t"
  [ "$res" = PASS ] || fail=1
done
exit $fail
