# shellcheck shell=bash
# goldmane-edge-aggregator: a local Goldmane simulator (the testkit's model of the real server:
# 242 x 15 s ring, rollovers, backfill and List rules; full upstream proto, real mutual TLS with
# a throwaway CA) serves Felix-style two-sided reports of a realistic namespace mix; the
# aggregator backfills and reconciles them into a throwaway Postgres, then shows the per-side
# edge table, external egress, staged-policy verdicts and its endpoints.
# Writes $DEMO_TMP/pg.env (DATABASE_URL) so the edges-digest scenario reuses the table.
set -euo pipefail
SCEN=30-goldmane-edge-aggregator
echo "Goldmane sim (mTLS, modelled ring) -> aggregator -> Postgres edge + egress_edge tables; reconciliation, readiness, metrics, SIGTERM drain" >"$DEMO_TMP/$SCEN.scenario"
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

AGG="$DEMO_BIN/goldmane-edge-aggregator"
SIM="$DEMO_BIN/goldmane-sim"
if [ ! -x "$SIM" ]; then
  echo "building the Goldmane simulator (testkit, feature goldmane)" >&2
  (cd "$ROOT" && cargo build --release -p testkit --features goldmane --bin goldmane-sim --locked 2>&1 | tail -1) >&2
fi

start_postgres
PSQL=(psql -X -q -At -h 127.0.0.1 -p "$PGPORT" -U postgres)
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE goldmane_edges' >/dev/null
DSN="postgres://postgres@127.0.0.1:$PGPORT/goldmane_edges"

GM="$DEMO_TMP/goldmane"
mkdir -p "$GM"
"$SIM" --dir "$GM" --mode demo --flows 400 --rate 20 >"$GM/sim.out" 2>"$GM/sim.err" &
SIM_PID=$!
on_exit "kill $SIM_PID"
for _ in $(seq 100); do [ -s "$GM/port" ] && break; sleep 0.1; done
[ -s "$GM/port" ] || { echo "goldmane-sim did not start: $(cat "$GM/sim.err")" >&2; exit 1; }
GM_PORT=$(cat "$GM/port")
echo "goldmane simulator (mTLS, client CA $GM/ca.crt) on 127.0.0.1:$GM_PORT" >&2

HEALTH_PORT=$(free_port)
LOG="$DEMO_TMP/goldmane-edge-aggregator.log"
GOLDMANE_HOST="127.0.0.1:$GM_PORT" GOLDMANE_SERVER_NAME=localhost \
  GOLDMANE_CLIENT_CERT="$GM/client.crt" GOLDMANE_CLIENT_KEY="$GM/client.key" GOLDMANE_CA="$GM/ca.crt" \
  DATABASE_URL="$DSN" GEA_FLUSH_INTERVAL_SECS=1 GEA_HEALTH_ADDR="127.0.0.1:$HEALTH_PORT" \
  "$AGG" run 2>"$LOG" &
AGG_PID=$!
on_exit "kill $AGG_PID"

# Run until the backfill has delivered the ring (the newest two buckets follow live) and the
# first reconciliation was written.
ring=$(cat "$GM/ring")
want=$((ring * 9 / 10))
metric() {
  curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" 2>/dev/null | awk -v k="$1" '$1 == k { print int($2) }'
}
received=0
for _ in $(seq 300); do
  received=$(metric goldmane_edge_flows_received_total)
  if [ "${received:-0}" -ge "$want" ] && [ "$(metric goldmane_edge_pending_edges)" = 0 ] &&
    grep -q ' INFO reconcile \[' "$LOG"; then
    break
  fi
  kill -0 "$AGG_PID" 2>/dev/null || { echo "aggregator exited early:" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[ "${received:-0}" -ge "$want" ] || { echo "only ${received:-0} of $ring ring flows received after 30s" >&2; cat "$LOG" >&2; exit 1; }
sleep 2 # a few live flows too

echo
echo "--- aggregator log (first lines, new edges elided) ---"
grep -v ' new edge \| new egress ' "$LOG" | head -9
echo "... $(grep -c ' new edge ' "$LOG") 'new edge' and $(grep -c ' new egress ' "$LOG") 'new egress' lines, e.g.:"
grep ' new edge ' "$LOG" | head -2
grep ' new egress ' "$LOG" | head -2
echo
echo "--- GET /readyz ---"
echo "$(curl -s "http://127.0.0.1:$HEALTH_PORT/readyz") (HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT/readyz"))"
echo "--- GET /metrics (selected) ---"
curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | grep -E '^goldmane_edge_(flows_received_total|flows_dropped_total\{[^}]*\}|unknown_action_total|edges_upserted_total|edges_new_total|flushes_total\{result="ok"\}|reconcile_runs_total\{result="ok"\}|reconcile_missed_total\{[^}]*\}|stream_up|pending_edges) '
echo
echo "--- edge table (one row per side and verdict): top 15 by flow_count ($("${PSQL[@]}" -d goldmane_edges -c 'SELECT count(*) FROM edge') rows) ---"
psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d goldmane_edges -P pager=off -c \
  "SELECT src_ns, dst_ns, action, reporter, to_char(first_seen AT TIME ZONE 'UTC', 'HH24:MI:SS') AS first_seen_utc,
          to_char(last_seen AT TIME ZONE 'UTC', 'HH24:MI:SS') AS last_seen_utc, flow_count, pending_action
     FROM edge ORDER BY flow_count DESC, src_ns, dst_ns, reporter LIMIT 15"
echo "--- allowed by the source but denied by the destination ---"
psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d goldmane_edges -P pager=off -c \
  "SELECT s.src_ns, s.dst_ns, s.flow_count AS src_allow, d.flow_count AS dst_deny
     FROM edge s JOIN edge d USING (src_ns, dst_ns)
    WHERE s.action = 'allow' AND s.reporter = 'src' AND d.action = 'deny' AND d.reporter = 'dst'"
echo "--- egress_edge (external destinations) ---"
psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d goldmane_edges -P pager=off -c \
  "SELECT src_ns, dst_type, dst_name, proto, dst_port, action, reporter, flow_count, pending_action
     FROM egress_edge ORDER BY src_ns, dst_type, dst_name, proto, dst_port"
echo "--- would be denied by staged policy ---"
"${PSQL[@]}" -d goldmane_edges -c \
  "SELECT src_ns || ' -> ' || dst_ns || ' (' || reporter || ')' FROM edge WHERE pending_deny_last_seen IS NOT NULL
   UNION ALL SELECT src_ns || ' -> ' || dst_type || ':' || dst_name || ' ' || proto || '/' || dst_port || ' (' || reporter || ')'
     FROM egress_edge WHERE pending_deny_last_seen IS NOT NULL ORDER BY 1"
echo "--- Wave-1 allowlist matrix (allowed by the source, never denied by the destination) ---"
"${PSQL[@]}" -d goldmane_edges -c \
  "SELECT s.src_ns || ' -> ' || array_to_string(array_agg(DISTINCT s.dst_ns ORDER BY s.dst_ns), ', ') FROM edge s
    WHERE s.action = 'allow' AND s.reporter = 'src' AND NOT EXISTS (SELECT 1 FROM edge d WHERE d.src_ns = s.src_ns
      AND d.dst_ns = s.dst_ns AND d.action = 'deny' AND d.reporter = 'dst')
    GROUP BY s.src_ns ORDER BY s.src_ns"

# SIGTERM drains the pending map and exits 0 (the weekly Reloader restart).
kill -TERM "$AGG_PID"
rc=0
wait "$AGG_PID" || rc=$?
kill "$SIM_PID" 2>/dev/null || true
echo
echo "--- SIGTERM ---"
tail -1 "$LOG"
echo "exit code $rc"
[ "$rc" = 0 ] || { echo "aggregator did not shut down cleanly" >&2; exit 1; }
if grep -q 'PRIVATE KEY' "$LOG"; then echo "key material in the log" >&2; exit 1; fi

echo "export DATABASE_URL='$DSN'" >"$DEMO_TMP/pg.env"
echo "export PGPORT='$PGPORT'" >>"$DEMO_TMP/pg.env"
echo "edge table left in $DSN for edges-digest (\$DEMO_TMP/pg.env)" >&2
