# shellcheck shell=bash
# nightly-report: three mornings from fixtures, each message shown as posted to the Slack
# capture — held (grouped reasons from a live in-process gate run against the test kit's fake
# Kubernetes API), upgraded (one worker NotReady), and the Pushgateway down (degraded ❓ post).
set -euo pipefail
echo "3 mornings: held (live gate), upgraded, Pushgateway down" >"$DEMO_TMP/60-nightly-report.scenario"
ROOT=${ROOT:-$(pwd)}
FIX="$ROOT/crates/nightly-report/tests/fixtures"
NR="$DEMO_BIN/nightly-report"
[ -x "$NR" ] || cargo build --release -p nightly-report --bins --locked >&2
[ -x "$DEMO_BIN/slack-capture" ] || cargo build --release -p testkit --bin slack-capture --locked >&2
if [ ! -x "$DEMO_BIN/fake-kube" ]; then
  echo "building the test kit's fake-kube (testkit, feature tls)" >&2
  cargo build --release -p testkit --features tls --bin fake-kube --locked 2>&1 | tail -1 >&2
fi
D="$DEMO_TMP/nightly-report"; mkdir -p "$D"
NOW=2026-06-29T06:07:00Z
T23=1782687600 # 2026-06-28T23:00:00Z, the detector's run

# A Pushgateway of our own (morning 3 stops it).
PGPORT=$(free_port)
# In memory only: Debian's default persistence file is shared by every instance on the machine.
prometheus-pushgateway --web.listen-address="127.0.0.1:$PGPORT" --log.level=error --persistence.file= >/dev/null 2>&1 &
PGPID=$!
on_exit "kill $PGPID"
PG="http://127.0.0.1:$PGPORT"
wait_http "$PG/-/ready"
echo "pushgateway on $PG" >&2

# The Slack capture.
"$DEMO_BIN/slack-capture" --out "$D/slack" --port-file "$D/slack.port" >"$D/slack.url" 2>"$D/slack.log" &
on_exit "kill $!"
for _ in $(seq 1 100); do [ -s "$D/slack.url" ] && break; sleep 0.05; done
WEBHOOK=$(cat "$D/slack.url")
echo "slack capture on http://127.0.0.1:$(cat "$D/slack.port") (webhook path kept secret)" >&2

# start_fake SCENARIO NAME: the fake API server for one morning; sets KUBECONFIG.
start_fake() {
  local scen=$1 name=$2
  "$DEMO_BIN/fake-kube" --scenario "$FIX/$scen" --kubeconfig "$D/$name.kubeconfig" --ready-file "$D/$name.ready" >/dev/null 2>"$D/$name.log" &
  on_exit "kill $!"
  for _ in $(seq 1 100); do [ -s "$D/$name.ready" ] && break; sleep 0.05; done
  [ -s "$D/$name.ready" ] || { echo "fake-kube $name did not start" >&2; cat "$D/$name.log" >&2; return 1; }
  export KUBECONFIG="$D/$name.kubeconfig"
  echo "fake kube-apiserver ($scen) on $(cat "$D/$name.ready")" >&2
}

# push JOB BODY: a group as the chain's scripts push it (POST, text format).
push() { printf '%b' "$2" | curl -fsS --data-binary @- "$PG/metrics/job/$1" >/dev/null; }
detector() { # TARGET RUNNING
  push k8s-version-check "# TYPE k8s_upgrade_available gauge\nk8s_upgrade_available{kind=\"minor\",running=\"$2\",target=\"$1\"} 1\n# TYPE k8s_version_check_last_run_timestamp gauge\nk8s_version_check_last_run_timestamp $T23\n"
}
chain() { # IN_FLIGHT BLOCKED HELD
  push k8s-upgrade "# TYPE k8s_upgrade_in_flight gauge\nk8s_upgrade_in_flight $1\n# TYPE k8s_upgrade_started_timestamp gauge\nk8s_upgrade_started_timestamp 0\n# TYPE k8s_upgrade_snapshot_taken gauge\nk8s_upgrade_snapshot_taken 0\n# TYPE k8s_upgrade_blocked gauge\nk8s_upgrade_blocked $2\n# TYPE k8s_upgrade_held gauge\nk8s_upgrade_held $3\n"
}

posts() { find "$D/slack" -name '[0-9]*.json' 2>/dev/null | wc -l; }

# morning TITLE WANT_HEADLINE_PREFIX: run the report, show the post as Slack renders it.
morning() {
  local title=$1 want=$2 before rc=0
  before=$(posts)
  echo
  echo "--- $title"
  echo "\$ nightly-report   (PUSHGATEWAY_URL=$PG, KUBECONFIG=fake-kube, COMPAT_MATRIX=addon-compat.json, REPORT_NOW=$NOW)"
  PUSHGATEWAY_URL="$PG" SLACK_WEBHOOK_URL="$WEBHOOK" COMPAT_MATRIX="$FIX/addon-compat.json" \
    REPORT_NOW="$NOW" REPORT_DEADLINE_SECONDS=20 GATE_DEADLINE_SECONDS=10 HOME=/nonexistent \
    "$NR" >"$D/out.txt" 2>"$D/err.txt" || rc=$?
  grep -E ' (INFO (source|outcome|posted)|WARN|ERROR) ' "$D/err.txt" | sed -E 's/^[^ ]+ /   log: /'
  echo "   exit code: $rc"
  if grep -qE 's3cr3t|/services/T0/B0/demo' "$D/err.txt" "$D/out.txt"; then echo "webhook leaked into the output" >&2; return 1; fi
  [ "$rc" = 0 ] || { echo "expected exit 0, got $rc" >&2; return 1; }
  [ "$(posts)" = $((before + 1)) ] || { echo "expected exactly one post" >&2; return 1; }
  local f; f=$(find "$D/slack" -name '[0-9]*.json' | sort | tail -1)
  echo "   posted to Slack ($(basename "$f")), as it appears in the channel:"
  python3 - "$f" "$want" <<'PY'
import json, sys
text = json.load(open(sys.argv[1]))["text"]
shown = text.replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
print("\n".join("   │ " + l for l in shown.split("\n")))
head = shown.split("\n")[1]
if not head.startswith(sys.argv[2]):
    sys.exit(f"unexpected headline: {head}")
PY
}

# 1. 2026-06-29: last night's preflight held 1.36.2; the live gate gives today's reasons.
start_fake morning-held.json held
detector 1.36.2 1.35.6
chain 0 0 1
morning "2026-06-29 06:07Z: held night (kyverno/ESO waiting, gpu-operator pinned, calico actionable)" "⏸️ HELD — 1.36.2 not yet upgradable"

# 2. Another morning: the chain went through (postflight reset the gauges); one worker NotReady.
start_fake morning-upgraded.json upgraded
chain 0 0 0
morning "upgraded night: every kubelet at 1.36.2 (v-prefixed in the API)" "🟢 UPGRADED — 1.35.6 → 1.36.2"

# 3. The Pushgateway is down: the report still posts what it knows and names what is missing.
kill "$PGPID"; wait "$PGPID" 2>/dev/null || true
morning "Pushgateway down: degraded report (silence is never an outcome)" "❓ UNKNOWN — Pushgateway unreadable"
