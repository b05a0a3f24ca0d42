# shellcheck shell=bash
# goldmane-edge-aggregator: a local Goldmane simulator (full upstream proto, real mutual TLS
# with a throwaway CA) streams a realistic namespace mix into a throwaway Postgres; the
# aggregator runs until the flows are stored, then shows the edge table and its endpoints.
# Writes $DEMO_TMP/pg.env (DATABASE_URL) so the edges-digest scenario reuses the table.
set -euo pipefail
SCEN=30-goldmane-edge-aggregator
echo "Goldmane sim (mTLS) -> aggregator -> Postgres edge table; readiness, metrics, SIGTERM drain" >"$DEMO_TMP/$SCEN.scenario"
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

# Run until the 400 ring flows minus the dropped ones (self-edges, empty namespace) are stored.
want=300
stored=0
for _ in $(seq 300); do
  stored=$("${PSQL[@]}" -d goldmane_edges -c 'SELECT coalesce(sum(flow_count),0) FROM edge' 2>/dev/null || echo 0)
  [ "${stored:-0}" -ge "$want" ] && break
  kill -0 "$AGG_PID" 2>/dev/null || { echo "aggregator exited early:" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[ "${stored:-0}" -ge "$want" ] || { echo "only $stored flows stored after 30s" >&2; cat "$LOG" >&2; exit 1; }
sleep 2 # a few live flows too

echo
echo "--- aggregator log (first lines, new edges elided) ---"
grep -v ' new edge ' "$LOG" | head -8
echo "... $(grep -c ' new edge ' "$LOG") 'new edge' lines, e.g.:"
grep ' new edge ' "$LOG" | head -3
echo
echo "--- GET /readyz ---"
echo "$(curl -s "http://127.0.0.1:$HEALTH_PORT/readyz") (HTTP $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT/readyz"))"
echo "--- GET /metrics (selected) ---"
curl -s "http://127.0.0.1:$HEALTH_PORT/metrics" | grep -E '^goldmane_edge_(flows_received_total|flows_dropped_total\{[^}]*\}|unknown_action_total|edges_upserted_total|edges_new_total|flushes_total\{result="ok"\}|stream_up|pending_edges) '
echo
echo "--- edge table: top 15 by flow_count ($("${PSQL[@]}" -d goldmane_edges -c 'SELECT count(*) FROM edge') rows) ---"
psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d goldmane_edges -P pager=off -c \
  "SELECT src_ns, dst_ns, action, to_char(first_seen AT TIME ZONE 'UTC', 'HH24:MI:SS') AS first_seen_utc,
          to_char(last_seen AT TIME ZONE 'UTC', 'HH24:MI:SS') AS last_seen_utc, flow_count
     FROM edge ORDER BY flow_count DESC, src_ns, dst_ns LIMIT 15"
echo "--- Wave-1 allowlist matrix (action=allow) ---"
"${PSQL[@]}" -d goldmane_edges -c \
  "SELECT src_ns || ' -> ' || array_to_string(array_agg(DISTINCT dst_ns ORDER BY dst_ns), ', ') FROM edge WHERE action='allow' GROUP BY src_ns ORDER BY src_ns"

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
