# shellcheck shell=bash
# vault-token-renew demo (sourced by scripts/demo.sh in a subshell; see scripts/demo-lib.sh).
# A real `bao server -dev` on a free loopback port: mint wizard's periodic token, renew it,
# clobber ~/.vault-token with an admin login token (HEALED + sweep), clobber it with a weak
# CI token (DRIFT, exit 1, file untouched), then `status`. Tokens are never printed: only
# their health (display name, policies, ttl) as the binary and the API report it.
set -euo pipefail
me=10-vault-token-renew
echo "real OpenBao dev server: renew, heal an admin clobber (+sweep), refuse a weak clobber, status" >"$DEMO_TMP/$me.scenario"

VTR="$DEMO_BIN/vault-token-renew"
W="$DEMO_TMP/vtr"
mkdir -p "$W/home" "$W/bao"
port=$(free_port)
ROOT_TOKEN="demo-root-$RANDOM$RANDOM"
(cd "$W/bao" && HOME="$W/bao" exec env -u BAO_TOKEN -u VAULT_TOKEN -u BAO_ADDR -u VAULT_ADDR \
  bao server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id="$ROOT_TOKEN" \
  -log-level=error >"$W/bao/server.log" 2>&1) &
on_exit "kill $!"
ADDR="http://127.0.0.1:$port"
wait_http "$ADDR/v1/sys/health" 60
echo "OpenBao dev server on $ADDR" >&2

# api METHOD PATH TOKEN [JSON] -> body on stdout (never echoed by the demo itself)
api() { curl -sS -X "$1" -H "X-Vault-Token: $3" -H 'Content-Type: application/json' ${4:+-d "$4"} "$ADDR$2"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }
policy() { api PUT "/v1/sys/policies/acl/$1" "$ROOT_TOKEN" "$(python3 -c 'import json,sys; print(json.dumps({"policy": sys.argv[1]}))' "$2")" >/dev/null; }
policy vault-admin 'path "*" { capabilities = ["create","read","update","delete","list","sudo"] }'
policy sops-admin 'path "secret/*" { capabilities = ["read"] }'
policy ci 'path "secret/ci/*" { capabilities = ["read"] }'

# health of whatever ~/.vault-token holds, from the server's view (no token shown)
health() {
  api GET /v1/auth/token/lookup-self "$(cat "$W/home/.vault-token")" | python3 -c '
import json, sys
d = json.load(sys.stdin).get("data") or {}
print("   ~/.vault-token -> dn=%s policies=%s ttl=%ss period=%ss orphan=%s" % (
    d.get("display_name"), ",".join(d.get("policies") or []), d.get("ttl"), d.get("period") or 0, d.get("orphan")))'
}
vtr() { "$VTR" --user wizard --home "$W/home" --state-home "$W/state" --config "$W/none.json" --vault-addr "$ADDR" "$@"; }
step() { echo; echo "-- $*"; }

step "1. an admin mints wizard's periodic orphan token (runbook) and writes ~/.vault-token"
api POST /v1/auth/token/create "$ROOT_TOKEN" \
  '{"policies":["vault-admin","sops-admin"],"no_parent":true,"period":"768h","display_name":"devvm-wizard","renewable":true}' \
  | field '["auth"]["client_token"]' | tr -d '\n' >"$W/home/.vault-token"
chmod 600 "$W/home/.vault-token"
health

step "2. the daily timer runs: vault-token-renew"
vtr || { echo "FAILED: happy renew" >&2; exit 1; }
health

step "3. 'vault login -method=oidc' clobbers ~/.vault-token with an admin login token"
api POST /v1/auth/token/create "$ROOT_TOKEN" \
  '{"policies":["vault-admin","sops-admin"],"display_name":"oidc-vbarzin","ttl":"168h"}' \
  | field '["auth"]["client_token"]' | tr -d '\n' >"$W/home/.vault-token"
ADMIN_SUM=$(sha256sum <"$W/home/.vault-token")
health
step "   vault-token-renew heals with the clobbering token's authority and sweeps the old periodic token"
vtr || { echo "FAILED: heal" >&2; exit 1; }
health
[ "$(sha256sum <"$W/home/.vault-token")" != "$ADMIN_SUM" ] || { echo "FAILED: file not healed" >&2; exit 1; }

step "4. a stray 'vault login -method=kubernetes' writes a read-only CI token"
api POST /v1/auth/token/create "$ROOT_TOKEN" '{"policies":["ci"],"display_name":"kubernetes-woodpecker-default"}' \
  | field '["auth"]["client_token"]' | tr -d '\n' >"$W/home/.vault-token"
WEAK_SUM=$(sha256sum <"$W/home/.vault-token")
health
step "   vault-token-renew refuses to renew it; the mint is denied by OpenBao -> DRIFT, exit 1"
if vtr; then echo "FAILED: weak clobber exited 0" >&2; exit 1; else echo "   exit status $? (the unit would show 'failed')"; fi
[ "$(sha256sum <"$W/home/.vault-token")" = "$WEAK_SUM" ] || { echo "FAILED: weak clobber file changed" >&2; exit 1; }
echo "   ~/.vault-token untouched"

step "5. vault-token-renew status (one read-only lookup)"
vtr status || true

step "6. the log file (one line per run)"
sed 's/^/   /' "$W/state/vault-token-renew.log"

# The demo's own invariant check: no token in anything the binary wrote.
for t in "$ROOT_TOKEN" $(grep -ho 's\.[A-Za-z0-9]\{24\}' "$W/home/.vault-token" || true); do
  if grep -qF "$t" "$W/state/vault-token-renew.log"; then echo "FAILED: a token reached the log" >&2; exit 1; fi
done
echo
echo "vault-token-renew demo: OK (renewed, healed, drift refused; no token printed)"
