# shellcheck shell=bash
# compat-gate: the live 2026-06 story against the test kit's fake Kubernetes API (loopback
# HTTPS, test CA) and a real Pushgateway: 1.34.9 -> 1.35.6 blocked (ESO 0.12, kyverno 1.16),
# the fixed cluster OK, then 1.35.6 -> 1.36.2 held (waiting/pinned + one actionable).
set -euo pipefail
echo "compat-gate: 1.35.6 blocked -> fixed OK -> 1.36.2 held; gauges read back" >"$DEMO_TMP/50-compat-gate.scenario"
ROOT=${ROOT:-$(pwd)}
FIX="$ROOT/crates/compat-gate/tests/fixtures"
GATE="$DEMO_BIN/compat-gate"
[ -x "$GATE" ] || cargo build --release -p compat-gate --bins --locked >&2
if [ ! -x "$DEMO_BIN/fake-kube" ]; then
  echo "building the test kit's fake-kube (testkit, feature tls)" >&2
  cargo build --release -p testkit --features tls --bin fake-kube --locked 2>&1 | tail -1 >&2
fi
D="$DEMO_TMP/compat-gate"; mkdir -p "$D"
cp "$FIX/addon-compat.json" "$D/addon-compat.json"
start_pushgateway

# start_fake SCENARIO NAME: a fake API server for one cluster state; sets KUBECONFIG.
start_fake() {
  local scen=$1 name=$2
  rm -f "$D/$name.ready"
  "$DEMO_BIN/fake-kube" --scenario "$FIX/$scen" --kubeconfig "$D/$name.kubeconfig" --ready-file "$D/$name.ready" >/dev/null 2>"$D/$name.log" &
  on_exit "kill $!"
  for _ in $(seq 1 100); do [ -s "$D/$name.ready" ] && break; sleep 0.05; done
  [ -s "$D/$name.ready" ] || { echo "fake-kube $name did not start" >&2; cat "$D/$name.log" >&2; return 1; }
  export KUBECONFIG="$D/$name.kubeconfig"
  echo "fake kube-apiserver ($scen) on $(cat "$D/$name.ready")" >&2
}

gauges() {
  curl -fsS "$PUSHGATEWAY/metrics" | grep -E '^k8s_upgrade_(blocked|held|gate_error|gate_blockers|in_flight)\{' \
    | sed -E 's/\{(class="[a-z]+",)?.*job="k8s-upgrade"[^}]*\}/{\1}/; s/\{\}//; s/,\}/}/; s/^/   /'
}

summarise_json() {
  python3 -c "$SUMMARY_PY"
}
SUMMARY_PY=$(cat <<'PY'
import json, sys
d = json.load(sys.stdin)
c = {}
for b in d['blockers']:
    c[b['class']] = c.get(b['class'], 0) + 1
checks = ', '.join('%s=%s(%dms)' % (x['name'], x['status'], x['duration_ms']) for x in d['checks'])
print('   --json: verdict=%s exit_code=%s kind=%s kubeadm_target=%s apiserver=%s nodes=%d blockers=%s' % (
    d['verdict'], d['exit_code'], d['kind'], d['kubeadm_target'], d['cluster']['apiserver'],
    len(d['cluster']['nodes']), c or 0))
print('   checks: ' + checks)
PY
)

# run_case TARGET EXPECTED_EXIT TITLE
run_case() {
  local target=$1 want=$2 title=$3 rc=0
  echo
  echo "--- $title"
  echo "\$ compat-gate $target --push   (COMPAT_MATRIX=addon-compat.json, PUSHGATEWAY_URL=$PUSHGATEWAY)"
  COMPAT_MATRIX="$D/addon-compat.json" "$GATE" "$target" --push --pushgateway-url "$PUSHGATEWAY" \
    >"$D/out.txt" 2>"$D/err.txt" || rc=$?
  sed 's/^/   /' "$D/out.txt"
  grep -E '^(INFO: (apiserver|pushed)|ERROR|WARN)' "$D/err.txt" | sed 's/^/   stderr: /' || true
  echo "   exit code: $rc"
  COMPAT_MATRIX="$D/addon-compat.json" "$GATE" "$target" --json --dry-run 2>/dev/null | summarise_json || true
  echo "   gauges in the Pushgateway (group job=k8s-upgrade):"
  gauges
  if [ "$rc" != "$want" ]; then echo "expected exit $want, got $rc" >&2; return 1; fi
}

# The chain's own series in the same group: our POST must leave it alone.
curl -fsS --data-binary $'# TYPE k8s_upgrade_in_flight gauge\nk8s_upgrade_in_flight 0\n' "$PUSHGATEWAY/metrics/job/k8s-upgrade" >/dev/null

start_fake cluster-1.34.9.json blocked
run_case 1.35.6 2 "2026-06-20: 1.34.9 -> 1.35.6 with ESO 0.12 and kyverno 1.16 (blocked, actionable)"
start_fake cluster-1.34.9-fixed.json fixed
run_case v1.35.6 0 "2026-06-23: kyverno 1.18.1, ESO 2.6.0 (the fixed cluster; v-prefix target)"
start_fake cluster-1.35.6.json held
run_case 1.36.2 4 "2026-06-28: 1.35.6 -> 1.36.2 (kyverno/ESO waiting, gpu-operator pinned, calico actionable: held)"
metrics=$(curl -fsS "$PUSHGATEWAY/metrics")
if grep -q '^k8s_upgrade_in_flight{.*job="k8s-upgrade".*} 0' <<<"$metrics"; then
  echo; echo "k8s_upgrade_in_flight survived every push (POST, never PUT)"
else
  echo "k8s_upgrade_in_flight was lost" >&2; exit 1
fi

# Issue 14: an HA control plane (three apiservers behind the EndpointSlices of default/kubernetes)
# on 1.33+, whose gauges carry removed_release="" for core v1 Endpoints and a deprecated CRD
# version: each apiserver is read, the deprecation is reported, the verdict stays OK.
python3 - "$FIX/cluster-1.34.9-fixed.json" "$D/ha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["deprecated_metrics"] = [["", "v1", "endpoints", ""], ["widgets.example.com", "v1alpha1", "widgets", ""]]
d["extra_apiservers"] = 2
json.dump(d, open(sys.argv[2], "w"))
PY
rm -f "$D/ha.ready"
"$DEMO_BIN/fake-kube" --scenario "$D/ha.json" --kubeconfig "$D/ha.kubeconfig" --ready-file "$D/ha.ready" >/dev/null 2>"$D/ha.log" &
on_exit "kill $!"
for _ in $(seq 1 100); do [ -s "$D/ha.ready" ] && break; sleep 0.05; done
[ -s "$D/ha.ready" ] || { echo "fake-kube ha did not start" >&2; cat "$D/ha.log" >&2; exit 1; }
export KUBECONFIG="$D/ha.kubeconfig"
echo
echo "--- HA control plane, 3 apiservers, deprecated-without-removal APIs in their gauges"
rc=0
COMPAT_MATRIX="$D/addon-compat.json" "$GATE" 1.35.6 >"$D/out.txt" 2>"$D/err.txt" || rc=$?
sed 's/^/   /' "$D/out.txt"
grep -E '^INFO: deprecated' "$D/err.txt" | sed 's/^/   stderr: /' || true
COMPAT_MATRIX="$D/addon-compat.json" "$GATE" 1.35.6 --json 2>/dev/null \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); [print("   apiserver %(endpoint)s: %(status)s, %(series)d series, %(deprecated_series)d deprecated" % a) for a in d["apiservers"]]'
echo "   exit code: $rc"
[ "$rc" = 0 ] || { echo "expected exit 0, got $rc" >&2; exit 1; }
