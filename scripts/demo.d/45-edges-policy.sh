# shellcheck shell=bash
# edges-digest policy / check / graph scenario (sourced by scripts/demo.sh in a subshell).
# Runs after the aggregator scenario (30), which fills `edge` and `egress_edge` from the Goldmane
# simulator and exports DATABASE_URL in $DEMO_TMP/pg.env. When that database predates the
# per-side migration or holds no observed data, a scratch database in the same cluster (or a
# Postgres of its own) is seeded with a demo-like trail, never touching the aggregator's data.
set -euo pipefail
_ep_name=45-edges-policy
echo "observed trail → NetworkPolicy for one namespace, staged check, graph SVG" >"$DEMO_TMP/$_ep_name.scenario"
_ep_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_ep_bin="$DEMO_BIN/edges-digest"
[ -x "$_ep_bin" ] || cargo build --release --locked -p edges-digest --bins \
  --manifest-path "$_ep_root/Cargo.toml" >/dev/null 2>&1
_ep_fail() { echo "edges-digest policy demo FAILED: $*" >&2; exit 1; }
_ep_psql() { psql -X -q -At -v ON_ERROR_STOP=1 "$_ep_dsn" -c "$1"; }
_ep_per_side() {
  [ "$(_ep_psql "SELECT to_regclass('egress_edge') IS NOT NULL AND EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'edge' AND column_name = 'reporter')" 2>/dev/null)" = t ]
}

_ep_seed=0
if [ -f "$DEMO_TMP/pg.env" ]; then
  # shellcheck disable=SC1091
  source "$DEMO_TMP/pg.env"
  _ep_dsn=${DATABASE_URL:?pg.env does not export DATABASE_URL}
  if ! _ep_per_side; then
    echo "   (the aggregator's database predates the per-side migration; seeding a scratch database)" >&2
    _ep_seed=1
  elif [ "$(_ep_psql "SELECT count(*) FROM edge WHERE action = 'allow' AND reporter = 'src' AND last_seen > now() - interval '7 days'")" = 0 ]; then
    echo "   (the aggregator's trail has no observed allow; seeding a scratch database)" >&2
    _ep_seed=1
  else
    echo "using the aggregator's trail ($(python3 -c 'import sys; print(sys.argv[1].split("@")[-1])' "$_ep_dsn"))" >&2
  fi
  if [ "$_ep_seed" = 1 ]; then
    _ep_psql "DROP DATABASE IF EXISTS edges_policy_demo" >/dev/null 2>&1
    _ep_psql "CREATE DATABASE edges_policy_demo" >/dev/null
    _ep_dsn=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit((p.scheme, p.netloc, "/edges_policy_demo", p.query, p.fragment)))' "$_ep_dsn")
  fi
else
  start_postgres
  psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE edges_policy_demo" >/dev/null
  _ep_dsn="postgres://postgres@127.0.0.1:$PGPORT/edges_policy_demo"
  _ep_seed=1
fi
if [ "$_ep_seed" = 1 ]; then
  # SCHEMA.md tables, then what the simulator reports: both sides, a src-allow/dst-deny pair,
  # public egress on tcp/443 and a udp port, a namespaced networkset, ICMP, a staged deny.
  _ep_psql "CREATE TABLE edge (src_ns text NOT NULL, dst_ns text NOT NULL, action text NOT NULL,
      reporter text NOT NULL, first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL,
      flow_count bigint NOT NULL, pending_action text NULL, pending_deny_last_seen timestamptz NULL,
      PRIMARY KEY (src_ns, dst_ns, action, reporter));
    CREATE TABLE egress_edge (src_ns text NOT NULL, dst_type text NOT NULL, dst_name text NOT NULL,
      proto text NOT NULL, dst_port integer NOT NULL, action text NOT NULL, reporter text NOT NULL,
      first_seen timestamptz NOT NULL, last_seen timestamptz NOT NULL, flow_count bigint NOT NULL,
      pending_action text NULL, pending_deny_last_seen timestamptz NULL,
      PRIMARY KEY (src_ns, dst_type, dst_name, proto, dst_port, action, reporter))"
  _ep_psql "INSERT INTO edge (src_ns, dst_ns, action, reporter, first_seen, last_seen, flow_count) VALUES
    ('monitoring','immich','allow','src', now() - interval '10 days', now(), 12),
    ('monitoring','immich','allow','dst', now() - interval '10 days', now(), 12),
    ('argocd','monitoring','allow','src', now() - interval '9 days', now(), 1),
    ('argocd','monitoring','allow','dst', now() - interval '9 days', now(), 1),
    ('recruiter-responder','dbaas','allow','src', now() - interval '2 days', now(), 3),
    ('recruiter-responder','dbaas','deny','dst', now() - interval '2 days', now(), 3),
    ('immich','dbaas','allow','src', now() - interval '10 days', now(), 7),
    ('immich','dbaas','allow','dst', now() - interval '10 days', now(), 7),
    ('immich','monitoring','allow','src', now() - interval '10 days', now(), 2),
    ('immich','monitoring','allow','dst', now() - interval '10 days', now(), 2)"
  _ep_psql "INSERT INTO egress_edge (src_ns, dst_type, dst_name, proto, dst_port, action, reporter, first_seen, last_seen, flow_count) VALUES
    ('immich','network','pub','tcp',443,'allow','src', now() - interval '10 days', now(), 40),
    ('immich','network','pub','udp',3478,'allow','src', now() - interval '10 days', now(), 2),
    ('immich','networkset','immich/cdn','tcp',443,'allow','src', now() - interval '10 days', now(), 5),
    ('immich','network','pvt','icmp',0,'allow','src', now() - interval '10 days', now(), 1)"
  _ep_psql "UPDATE edge SET pending_action = 'deny', pending_deny_last_seen = now() - interval '10 minutes'
    WHERE src_ns = 'immich' AND dst_ns = 'monitoring'"
fi

# The namespace to show: the one with the most observed destinations (ties by name).
_ep_ns=$(_ep_psql "SELECT src_ns FROM (SELECT src_ns, dst_ns FROM edge WHERE action = 'allow' AND reporter = 'src' AND last_seen > now() - interval '7 days'
    UNION SELECT src_ns, dst_type || dst_name || proto || dst_port FROM egress_edge WHERE action = 'allow' AND reporter = 'src' AND last_seen > now() - interval '7 days') d
  WHERE src_ns ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' GROUP BY src_ns ORDER BY count(*) DESC, src_ns LIMIT 1")
[ -n "$_ep_ns" ] || _ep_fail "no namespace with observed egress"
_ep_tool() { # _ep_tool OUT ARGS…: sets _ep_rc, stderr indented
  local out=$1; shift
  set +e
  DATABASE_URL="$_ep_dsn" "$_ep_bin" "$@" >"$out" 2>"$DEMO_TMP/ep.err"
  _ep_rc=$?
  set -e
  sed 's/^/    /' "$DEMO_TMP/ep.err" >&2
}

echo "-- 1. edges-digest policy --namespace $_ep_ns --exclude-cidr 10.42.0.0/16 --exclude-cidr 10.43.0.0/16" >&2
_ep_tool "$DEMO_TMP/policy.yaml" policy --namespace "$_ep_ns" --exclude-cidr 10.42.0.0/16 --exclude-cidr 10.43.0.0/16
[ "$_ep_rc" = 0 ] || _ep_fail "policy exited $_ep_rc"
grep -q '^kind: NetworkPolicy$' "$DEMO_TMP/policy.yaml" || _ep_fail "no NetworkPolicy printed"
sed 's/^/   │ /' "$DEMO_TMP/policy.yaml" >&2
if command -v kubernetes-validate >/dev/null 2>&1; then
  kubernetes-validate --strict --quiet "$DEMO_TMP/policy.yaml" >&2 || _ep_fail "kubernetes-validate --strict rejected the policy"
  echo "   kubernetes-validate --strict: ok" >&2
fi

echo "-- 2. the same intent as a Calico StagedNetworkPolicy (observe in Whisker before enforcing): first rules" >&2
_ep_tool "$DEMO_TMP/staged.yaml" policy --namespace "$_ep_ns" --format calico-staged
[ "$_ep_rc" = 0 ] || _ep_fail "calico-staged exited $_ep_rc"
grep -q '^kind: StagedNetworkPolicy$' "$DEMO_TMP/staged.yaml" || _ep_fail "no StagedNetworkPolicy printed"
grep -v '^#' "$DEMO_TMP/staged.yaml" | head -20 | sed 's/^/   │ /' >&2

# The staged check: a namespace the staged policy would hurt, if there is one.
_ep_check_ns=$(_ep_psql "SELECT src_ns FROM edge WHERE pending_deny_last_seen > now() - interval '7 days' AND src_ns ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' ORDER BY src_ns LIMIT 1")
_ep_check_ns=${_ep_check_ns:-$_ep_ns}
echo "-- 3. edges-digest policy --check --namespace $_ep_check_ns: what the staged policy would deny (exit 7 = would break something)" >&2
_ep_tool "$DEMO_TMP/check.txt" policy --check --namespace "$_ep_check_ns"
sed 's/^/   │ /' "$DEMO_TMP/check.txt" >&2
case $_ep_rc in
  7) grep -q '^would deny ' "$DEMO_TMP/check.txt" || _ep_fail "exit 7 without a 'would deny' line"
     echo "   exit 7 (expected): fix the staged policy before enforcing it" >&2 ;;
  0) echo "   exit 0: the staged policy denies nothing observed" >&2 ;;
  *) _ep_fail "check exited $_ep_rc" ;;
esac

echo "-- 4. edges-digest graph --format svg (rendered in-process, no Graphviz)" >&2
_ep_svg="$DEMO_TMP/edges-graph.svg"
_ep_tool "$_ep_svg" graph --format svg
[ "$_ep_rc" = 0 ] || _ep_fail "graph exited $_ep_rc"
if ! grep -q "<svg " "$_ep_svg" || ! grep -q ">$_ep_ns</text>" "$_ep_svg"; then
  _ep_fail "SVG lacks the $_ep_ns node"
fi
echo "   graph SVG written: $_ep_svg ($(wc -c <"$_ep_svg") bytes; open it in a browser)" >&2
_ep_tool "$DEMO_TMP/edges-graph.md" graph
[ "$_ep_rc" = 0 ] || _ep_fail "mermaid graph exited $_ep_rc"
echo "   mermaid for a Forgejo/GitHub page: $DEMO_TMP/edges-graph.md ($(grep -c -- '-->' "$DEMO_TMP/edges-graph.md") edges)" >&2
