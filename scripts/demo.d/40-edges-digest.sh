# shellcheck shell=bash
# edges-digest scenario (sourced by scripts/demo.sh in a subshell; helpers from demo-lib.sh).
# Runs after the aggregator: reads its `edge` table through the DATABASE_URL exported by
# $DEMO_TMP/pg.env when that file exists, else starts its own Postgres and seeds a day of edges.
# Slack is testkit's slack-capture stand-in; the captured message is printed as Slack shows it.
set -euo pipefail
_ed_name=40-edges-digest
echo "new edges, external egress, staged denies → one Slack digest; re-run quiet; channel_not_found → exit 4 + notice" >"$DEMO_TMP/$_ed_name.scenario"
_ed_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_ed_bin="$DEMO_BIN/edges-digest"
[ -x "$_ed_bin" ] || cargo build --release --locked -p edges-digest --bins \
  --manifest-path "$_ed_root/Cargo.toml" >/dev/null 2>&1
[ -x "$DEMO_BIN/slack-capture" ] || cargo build --release --locked -p testkit --bin slack-capture \
  --manifest-path "$_ed_root/Cargo.toml" >/dev/null 2>&1
_ed_fail() { echo "edges-digest demo FAILED: $*" >&2; exit 1; }
_ed_psql() { psql -X -q -At -v ON_ERROR_STOP=1 "$_ed_dsn" -c "$1"; }
# _ed_with_db DSN DB: the same DSN (URL or key=value) pointing at another database.
_ed_with_db() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.parse as u
dsn, db = sys.argv[1:]
if "://" in dsn:
    p = u.urlsplit(dsn)
    print(u.urlunsplit((p.scheme, p.netloc, "/" + db, p.query, p.fragment)))
else:
    print(dsn + " dbname=" + db)
PY
}
# The per-side trail tables (SCHEMA.md of issues 13/17; the aggregator's migration creates
# them): used only to seed a scratch database.
_ed_edge_ddl() {
  cat <<'SQL'
CREATE TABLE IF NOT EXISTS edge (src_ns text NOT NULL, dst_ns text NOT NULL, action text NOT NULL,
  reporter text NOT NULL, first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL,
  flow_count bigint NOT NULL, pending_action text NULL, pending_deny_last_seen timestamptz NULL,
  PRIMARY KEY (src_ns, dst_ns, action, reporter));
CREATE TABLE IF NOT EXISTS egress_edge (src_ns text NOT NULL, dst_type text NOT NULL,
  dst_name text NOT NULL, proto text NOT NULL, dst_port integer NOT NULL, action text NOT NULL,
  reporter text NOT NULL, first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL,
  flow_count bigint NOT NULL, pending_action text NULL, pending_deny_last_seen timestamptz NULL,
  PRIMARY KEY (src_ns, dst_type, dst_name, proto, dst_port, action, reporter));
SQL
}
# Whether the database has the per-side schema (edge.reporter and egress_edge).
_ed_per_side() {
  [ "$(_ed_psql "SELECT to_regclass('egress_edge') IS NOT NULL AND EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'edge' AND column_name = 'reporter')" 2>/dev/null)" = t ]
}

_ed_seed=0
if [ -f "$DEMO_TMP/pg.env" ]; then
  # shellcheck disable=SC1091
  source "$DEMO_TMP/pg.env"   # exports DATABASE_URL (the aggregator's goldmane_edges)
  [ -n "${DATABASE_URL:-}" ] || _ed_fail "$DEMO_TMP/pg.env does not export DATABASE_URL"
  _ed_dsn=$DATABASE_URL
  echo "using the aggregator's Postgres and edge table ($(python3 -c 'import sys; print(sys.argv[1].split("@")[-1])' "$_ed_dsn"))" >&2
  _ed_new=$(_ed_psql "SELECT count(*) FROM edge WHERE first_seen > now() - interval '24 hours'" 2>/dev/null || echo 0)
  _ed_why="has no edge of the last 24 h"
  if ! _ed_per_side; then _ed_new=0; _ed_why="predates the per-side migration"; fi
  if [ "$_ed_new" = 0 ]; then
    # The aggregator left nothing usable: a scratch database in the same cluster, never its data.
    echo "   (the aggregator's table $_ed_why; seeding a scratch database)" >&2
    _ed_psql "DROP DATABASE IF EXISTS edges_digest_demo" >/dev/null 2>&1
    _ed_psql "CREATE DATABASE edges_digest_demo" >/dev/null
    _ed_dsn=$(_ed_with_db "$_ed_dsn" edges_digest_demo)
    _ed_seed=1
  else
    echo "   $_ed_new edges first seen in the last 24 h" >&2
  fi
else
  start_postgres
  psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE goldmane_edges" >/dev/null
  _ed_dsn="postgres://postgres@127.0.0.1:$PGPORT/goldmane_edges"
  _ed_seed=1
fi
if [ "$_ed_seed" = 1 ]; then
  # The per-side tables, then a day of edges as both sides report them (one older, outside
  # the window): a src-allow/dst-deny pair shows once, as deny.
  _ed_psql "$(_ed_edge_ddl)"
  _ed_psql "INSERT INTO edge (src_ns, dst_ns, action, reporter, first_seen, last_seen, flow_count) VALUES
    ('recruiter-responder','dbaas','allow','src', now() - interval '40 minutes', now(), 3),
    ('recruiter-responder','dbaas','deny','dst', now() - interval '40 minutes', now(), 3),
    ('monitoring','immich','allow','src', now() - interval '5 hours', now(), 12),
    ('monitoring','immich','allow','dst', now() - interval '5 hours', now(), 12),
    ('argocd','monitoring','allow','src', now() - interval '9 hours', now(), 1),
    ('immich','dbaas','allow','src', now() - interval '20 hours', now(), 7),
    ('old','edge','allow','src', now() - interval '3 days', now(), 99)
    ON CONFLICT DO NOTHING"
  _ed_psql "INSERT INTO egress_edge (src_ns, dst_type, dst_name, proto, dst_port, action, reporter, first_seen, last_seen, flow_count) VALUES
    ('immich','network','pub','tcp',443,'allow','src', now() - interval '3 hours', now(), 40),
    ('immich','networkset','immich/cdn','tcp',443,'allow','src', now() - interval '3 hours', now(), 5)
    ON CONFLICT DO NOTHING"
  _ed_psql "UPDATE edge SET pending_action = 'deny', pending_deny_last_seen = now() - interval '10 minutes'
    WHERE src_ns = 'immich' AND dst_ns = 'dbaas'"
fi

# _ed_capture DIR [--reply …]: start a Slack capture, echo its webhook URL.
_ed_capture() {
  local dir=$1; shift
  mkdir -p "$dir"
  "$DEMO_BIN/slack-capture" --out "$dir" "$@" >"$dir.url" 2>/dev/null &
  on_exit "kill $!"
  local i=0
  while [ ! -s "$dir.url" ] && ((i < 100)); do sleep 0.05; i=$((i + 1)); done
  [ -s "$dir.url" ] || _ed_fail "slack-capture did not start"
  cat "$dir.url"
}
_ed_run() { # _ed_run WEBHOOK [args…]; sets _ed_rc, shows stderr indented
  local hook=$1; shift
  set +e
  DATABASE_URL="$_ed_dsn" SLACK_WEBHOOK_URL="$hook" SLACK_CHANNEL="#alerts" "$_ed_bin" run "$@" \
    >"$DEMO_TMP/ed.out" 2>"$DEMO_TMP/ed.err"
  _ed_rc=$?
  set -e
  sed 's/^/    /' "$DEMO_TMP/ed.err" >&2
  if grep -qF "$hook" "$DEMO_TMP/ed.err" "$DEMO_TMP/ed.out" ||
    grep -q "/services/T0/B0/demo" "$DEMO_TMP/ed.err" "$DEMO_TMP/ed.out"; then
    _ed_fail "webhook URL or path printed"
  fi
}
_ed_posts() { find "$1" -name '*.json' | wc -l; }
# _ed_show FILE: the post's text as Slack displays it (entities decoded; *bold*, `code` kept).
_ed_show() {
  python3 - "$1" <<'PY' | sed 's/^/   │ /' >&2
import html, json, sys
d = json.load(open(sys.argv[1]))
print(f"[channel: {d.get('channel', 'webhook default')}]")
print(html.unescape(d["text"]))
PY
}

_ed_ok_dir="$DEMO_TMP/slack-digest"
_ed_hook=$(_ed_capture "$_ed_ok_dir")

echo "-- 1. dry-run: the text that would be posted (stdout), nothing posted or recorded" >&2
_ed_run "$_ed_hook" --dry-run
[ "$_ed_rc" = 0 ] || _ed_fail "dry-run exited $_ed_rc"
[ "$(_ed_posts "$_ed_ok_dir")" = 0 ] || _ed_fail "dry-run posted"
sed 's/^/   │ /' "$DEMO_TMP/ed.out" >&2

echo "-- 2. first run: edges first seen in the last 24 h → one digest to #alerts" >&2
_ed_run "$_ed_hook"
[ "$_ed_rc" = 0 ] || _ed_fail "first run exited $_ed_rc"
[ "$(_ed_posts "$_ed_ok_dir")" = 1 ] || _ed_fail "expected one Slack post"
echo "   Slack message as posted:" >&2
_ed_show "$_ed_ok_dir/001.json"
echo "   announced keys recorded: $(_ed_psql 'SELECT count(*) FROM edge_digest_announced')" >&2

echo "-- 3. re-run at once: every edge already announced → quiet, exit 0" >&2
_ed_run "$_ed_hook"
[ "$_ed_rc" = 0 ] || _ed_fail "re-run exited $_ed_rc"
[ "$(_ed_posts "$_ed_ok_dir")" = 1 ] || _ed_fail "re-run posted again"
grep -q "no new edges since" "$DEMO_TMP/ed.err" || _ed_fail "re-run did not say it was quiet"
echo "   no post (still 1 captured)" >&2

echo "-- 4. Slack answers 404 channel_not_found (the 2026-06 silent failure) → loud, exit 4 (expected)" >&2
_ed_bad_dir="$DEMO_TMP/slack-404"
_ed_bad_hook=$(_ed_capture "$_ed_bad_dir" --reply 404:channel_not_found)
_ed_before=$(_ed_psql 'SELECT count(*) FROM edge_digest_run')
# --state none is the original stateless 24 h window, so there is something to deliver again.
_ed_run "$_ed_bad_hook" --state none
[ "$_ed_rc" = 4 ] || _ed_fail "channel_not_found exited $_ed_rc, expected 4"
grep -q "ERROR slack rejected the digest: HTTP 404 channel_not_found" "$DEMO_TMP/ed.err" || _ed_fail "no L-SLACK line"
[ "$(_ed_posts "$_ed_bad_dir")" = 2 ] || _ed_fail "expected the digest attempt and the failure notice"
echo "   failure notice, posted without a channel (the webhook's own channel):" >&2
_ed_show "$_ed_bad_dir/002.json"
[ "$(_ed_psql 'SELECT count(*) FROM edge_digest_run')" = "$_ed_before" ] || _ed_fail "a failed run was recorded"
echo "   exit 4 (fails the Job → DigestFailing), nothing recorded, webhook URL never printed" >&2
