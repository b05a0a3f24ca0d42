#!/usr/bin/env bash
# compat-gate benchmark (spec §10): the release binary against the test kit's fake API server
# (loopback HTTPS) in two scenarios, generated here:
#   homelab: 7 nodes, 6 addons, 2 000 objects in the window's resources, 60 Helm releases,
#            5 MB /metrics                       -> wall <= 1 s, peak RSS <= 48 MiB
#   stress:  50 nodes, 40 addons, 20 000 objects (pages of 500), 100 Helm releases of 200 KiB
#            manifest each, 20 MB /metrics       -> wall <= 4 s, peak RSS <= 48 MiB
#   ha:      stress with three apiservers (EndpointSlices of default/kubernetes), 20 MB /metrics
#            each, read in parallel               -> wall <= 1.5 x stress, peak RSS <= 48 MiB
# plus the stripped binary <= 6 MiB and requests growing with pages, never per object (the
# gate logs its request count). Median of 3 runs. Writes target/bench/compat-gate.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${DEMO_BIN:-$ROOT/target/release}
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get install -y --no-install-recommends time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y --no-install-recommends time >/dev/null; }; }
[ -x "$BIN/compat-gate" ] || cargo build --release --locked -p compat-gate --bins >/dev/null
[ -x "$BIN/fake-kube" ] || cargo build --release --locked -p testkit --features tls --bin fake-kube >/dev/null 2>&1
T=$(mktemp -d /tmp/compat-gate-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; fi; done; rm -rf "$T"; }
trap cleanup EXIT

# gen NAME NODES ADDONS OBJECTS RELEASES MANIFEST_BYTES METRICS_BYTES [EXTRA_APISERVERS]
gen() {
  python3 - "$T" "$@" <<'PY'
import json, sys, hashlib
out, name, nodes, addons, objects, releases, mbytes, metrics = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:9])
extra = int(sys.argv[9]) if len(sys.argv) > 9 else 0
matrix = {"_containerd_min": {"1.32": ["1.7.24", "2.0.1", "2.1.0"]}}
scen = {"git_version": "v1.31.9",
        "nodes": [{"name": "k8s-node%d" % i, "kubelet": "v1.31.9", "runtime": "containerd://2.1.5"} for i in range(1, nodes + 1)],
        "workloads": [], "applied": [], "helm_releases": [], "deprecated_metrics": [
            ["flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "1.32"]],
        "metrics_padding_bytes": metrics, "extra_apiservers": extra}
for a in range(addons):
    n = "addon-%02d" % a
    matrix[n] = {"workload": "bench/deployment/%s" % n, "versions": {"1.0": "1.31", "1.2": "1.35"}}
    scen["workloads"].append({"kind": "Deployment", "namespace": "bench", "name": n,
                              "image": "registry.local:5000/bench/%s:v1.2.%d" % (n, a)})
half = objects // 2
for res, kind in (("flowschemas", "FlowSchema"), ("prioritylevelconfigurations", "PriorityLevelConfiguration")):
    scen["applied"].append({"resource": "flowcontrol.apiserver.k8s.io/v1/" + res, "kind": kind, "name": kind.lower(),
                            "last_applied": "flowcontrol.apiserver.k8s.io/v1", "count": half - 3})
    scen["applied"].append({"resource": "flowcontrol.apiserver.k8s.io/v1/" + res, "kind": kind, "name": "old-" + kind.lower(),
                            "last_applied": "flowcontrol.apiserver.k8s.io/v1beta3", "count": 3})
for r in range(releases):
    docs, size, i = [], 0, 0
    while size < mbytes:
        blob = hashlib.sha256(b"%d-%d" % (r, i)).hexdigest() * 4
        d = ("---\n# Source: app%d/templates/cm%d.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app%d-cm%d\n"
             "  labels:\n    app.kubernetes.io/name: app%d\ndata:\n  blob: %s\n") % (r, i, r, i, r, blob)
        docs.append(d); size += len(d); i += 1
    if r == 0:
        docs.append("---\napiVersion: flowcontrol.apiserver.k8s.io/v1beta3\nkind: FlowSchema\nmetadata:\n  name: app0\n")
    scen["helm_releases"].append({"namespace": "apps", "name": "app%d" % r, "revision": 3, "chart": "app%d" % r,
                                  "chart_version": "1.0.%d" % r, "manifest": "".join(docs), "gzip": True})
json.dump(scen, open("%s/%s.scenario.json" % (out, name), "w"))
json.dump(matrix, open("%s/%s.matrix.json" % (out, name), "w"))
PY
}

start_fake() { # start_fake NAME
  "$BIN/fake-kube" --scenario "$T/$1.scenario.json" --kubeconfig "$T/$1.kubeconfig" --ready-file "$T/$1.ready" >/dev/null 2>"$T/$1.fk.log" &
  PIDS+=("$!")
  for _ in $(seq 1 600); do [ -s "$T/$1.ready" ] && return 0; sleep 0.05; done
  echo "fake-kube $1 did not start" >&2; cat "$T/$1.fk.log" >&2; exit 1
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# run_scenario NAME → WALL (s), RSS (KiB), REQS, RC
run_scenario() {
  local walls=() rss=() before after
  for _ in 1 2 3; do
    before=$EPOCHREALTIME
    set +e
    KUBECONFIG="$T/$1.kubeconfig" COMPAT_MATRIX="$T/$1.matrix.json" \
      /usr/bin/time -f '%M' -o "$T/time" "$BIN/compat-gate" 1.32.4 >"$T/out" 2>"$T/err"
    RC=$?
    set -e
    after=$EPOCHREALTIME
    walls+=("$(python3 -c "print(round($after - $before, 3))")")
    rss+=("$(tail -1 "$T/time")")
  done
  WALL=$(median "${walls[@]}"); RSS=$(median "${rss[@]}")
  REQS=$(sed -n 's/^INFO: done verdict=[a-z]* requests=\([0-9]*\).*/\1/p' "$T/err")
  echo "   $1: exit $RC, wall ${WALL}s (runs: ${walls[*]}), peak RSS $((RSS / 1024)) MiB, requests $REQS" >&2
  head -3 "$T/out" | sed 's/^/     /' >&2
}

echo "generating scenarios" >&2
gen homelab 7 6 2000 60 20000 5000000
gen stress 50 40 20000 100 204800 20000000
gen ha 50 40 20000 100 204800 20000000 2
start_fake homelab
start_fake stress
start_fake ha
run_scenario homelab; HW=$WALL; HR=$RSS; HQ=$REQS; HRC=$RC
run_scenario stress; SW=$WALL; SR=$RSS; SQ=$REQS; SRC=$RC
run_scenario ha; AW=$WALL; AR=$RSS; ARC=$RC
# Request count per object: pages of 500 objects, 20 releases, 1 per addon + discovery/version/nodes.
HEXP=$((2 + 1 + 6 + 1 + 2 + 2 * 2 + 3 + 1)); SEXP=$((2 + 1 + 40 + 1 + 2 + 2 * 20 + 5 + 1))
cp "$BIN/compat-gate" "$T/stripped"; strip "$T/stripped" 2>/dev/null || true
SIZE=$(stat -c %s "$T/stripped")

ok() { python3 -c "import sys; print('ok' if float(sys.argv[1]) <= float(sys.argv[2]) else 'OVER')" "$1" "$2"; }
mkdir -p target/bench
{
  echo "Scenarios generated by \`scripts/bench.d/compat-gate.sh\` (target 1.31.9 -> 1.32.4, so the annotations and helm sources run), median of 3 runs, fake API server over loopback HTTPS."
  echo
  echo "| figure | target | measured | ratio/ok |"
  echo "|---|---|---|---|"
  echo "| homelab wall (7 nodes, 6 addons, 2 000 objects, 60 releases, 5 MB metrics) | <= 1 s | ${HW} s | $(python3 -c "print(round($HW/1.0,2))") of target, $(ok "$HW" 1) |"
  echo "| homelab peak RSS | <= 48 MiB | $(python3 -c "print(round($HR/1024,1))") MiB | $(ok "$HR" 49152) |"
  echo "| homelab requests | grow with pages | $HQ | ~$HEXP expected by pages |"
  echo "| stress wall (50 nodes, 40 addons, 20 000 objects, 100 x 200 KiB releases, 20 MB metrics) | <= 4 s | ${SW} s | $(python3 -c "print(round($SW/4.0,2))") of target, $(ok "$SW" 4) |"
  echo "| stress peak RSS | <= 48 MiB | $(python3 -c "print(round($SR/1024,1))") MiB | $(ok "$SR" 49152) |"
  echo "| stress requests | grow with pages | $SQ | ~$SEXP expected by pages (20 000 objects -> 40 pages) |"
  echo "| ha wall (stress with 3 apiservers x 20 MB metrics, read in parallel) | <= 1.5 x stress (${SW} s) | ${AW} s | $(python3 -c "print(round($AW/$SW,2))") x stress, $(ok "$AW" "$(python3 -c "print($SW*1.5)")") |"
  echo "| ha peak RSS | <= 48 MiB | $(python3 -c "print(round($AR/1024,1))") MiB | $(ok "$AR" 49152) |"
  echo "| stripped binary | <= 6 MiB | $(python3 -c "print(round($SIZE/1048576,2))") MiB | $(ok "$SIZE" 6291456) |"
  echo "| verdicts | blocked (exit 2) | homelab exit $HRC, stress exit $SRC, ha exit $ARC | $([ "$HRC" = 2 ] && [ "$SRC" = 2 ] && [ "$ARC" = 2 ] && echo ok || echo WRONG) |"
} >target/bench/compat-gate.md
cat target/bench/compat-gate.md
[ "$HRC" = 2 ] && [ "$SRC" = 2 ] && [ "$ARC" = 2 ]
