#!/usr/bin/env bash
# Benchmark of t3-migrate-idle (release build; run by scripts/bench.sh, needs root like the job).
# 50 throwaway system users, each with a deferral marker and a real state.sqlite of 100 000
# thread rows; fakes for systemctl/t3/npm first on PATH. Measures one dry-run pass (every user
# passes the idle gate, read as its owner) and one `status --json`: wall time per pass and the
# peak RSS of the largest process (the binary or one of its per-user children).
# Targets (spec): <= 1 s per pass, peak RSS <= 20 MiB. Writes target/bench/t3-migrate-idle.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN="$ROOT/target/release/t3-migrate-idle"
[ -x "$BIN" ] || cargo build --release -p t3-migrate-idle --bins
[ "$(id -u)" = 0 ] || { echo "bench: t3-migrate-idle runs as root; rerun as root" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: apt-get install time (GNU time, for the child's peak RSS)" >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends time >/dev/null; }
USERS=${T3MI_BENCH_USERS:-50} ROWS=${T3MI_BENCH_ROWS:-100000} RUNS=${T3MI_BENCH_RUNS:-5}
W=$(mktemp -d /tmp/t3mi-bench.XXXXXX); chmod 755 "$W"
created=()
# shellcheck disable=SC2015 # `A && B || true` is meant
cleanup() {
  for u in "${created[@]:-}"; do
    if [ -n "$u" ]; then userdel "$u" 2>/dev/null || true; groupdel "$u" 2>/dev/null || true; fi
  done
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W"/{fakebin,home,etc,state/deferred,backups,run}
chmod 755 "$W/home"
NOW=$(date +%s)
cat >"$W/fakebin/systemctl" <<SH
#!/bin/sh
case "\$*" in
  "show -p Type,ActiveState,SubState "*) printf 'Type=oneshot\nActiveState=inactive\nSubState=dead\n';;
  "is-active --quiet "*) exit 0;;
  "show -p ActiveEnterTimestamp --value --timestamp=unix "*) echo "@$((NOW - 86400))";;
  *) exit 0;;
esac
SH
printf '#!/bin/sh\necho "t3 v0.0.36"\n' >"$W/fakebin/t3"
printf '#!/bin/sh\nexit 0\n' >"$W/fakebin/npm"
chmod 755 "$W"/fakebin/*

echo "bench: building one DB of $ROWS rows" >&2
python3 - "$W/template.sqlite" "$ROWS" <<'PY'
import sqlite3, sys, datetime as dt, random
path, n = sys.argv[1], int(sys.argv[2])
now = dt.datetime.now(dt.timezone.utc)
c = sqlite3.connect(path)
c.execute("CREATE TABLE projection_thread_sessions(thread_id TEXT PRIMARY KEY, project_id TEXT, active_turn_id TEXT, status TEXT, updated_at TEXT NOT NULL)")
rnd = random.Random(7)
rows = ((f"thread-{i:08d}", f"project-{i % 37}", None, "idle",
         (now - dt.timedelta(hours=2, seconds=rnd.randrange(86400 * 30))).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        for i in range(n))
c.executemany("INSERT INTO projection_thread_sessions VALUES (?,?,?,?,?)", rows)
c.commit(); c.close()
PY
echo "bench: $USERS users (useradd), markers and DB copies" >&2
for i in $(seq -w 0 $((USERS - 1))); do
  u="t3mib$i"
  id "$u" >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir "$W/home/$u" --shell /usr/sbin/nologin "$u"
  created+=("$u")
  mkdir -p "$W/home/$u/.t3/userdata"
  cp "$W/template.sqlite" "$W/home/$u/.t3/userdata/state.sqlite"
  chown -R "$u:$u" "$W/home/$u"; chmod -R u=rwX,go= "$W/home/$u"
  echo "0.0.36" >"$W/state/deferred/$u"; touch -d "@$((NOW - 3600))" "$W/state/deferred/$u"
done
DBSIZE=$(du -m "$W/template.sqlite" | cut -f1)

# measure <PATH> <cmd...>: prints "<wall s> <maxrss KiB (unused: includes python's own fork)>
# <cpu s of the whole tree> <VmHWM KiB of the pass process itself>"; the command must exit 0
measure() {
  python3 - "$@" <<'PY'
import os, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                     env={"PATH": sys.argv[1]})
hwm = 0  # VmHWM of the pass process itself, sampled until it exits
while p.poll() is None:
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.002)
dt = time.perf_counter() - t
if p.returncode != 0:
    sys.stderr.write(p.stderr.read().decode()); sys.exit(1)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{dt:.3f} {r.ru_maxrss} {r.ru_utime + r.ru_stime:.3f} {hwm}")
PY
}
args=(--state-dir "$W/state" --backup-dest "$W/backups" --home-root "$W/home"
      --freeze-file "$W/etc/t3-autoupdate.freeze" --user-map "$W/etc/map"
      --lock-file "$W/run/lock" --syslog-socket "$W/no-syslog")
FPATH="$W/fakebin:/usr/bin:/bin"
env -i PATH="$FPATH" "$BIN" --dry-run "${args[@]}" >"$W/dry.out"
grep -q "pass complete (migrated=0 skipped=0)" "$W/dry.out" || { cat "$W/dry.out" >&2; exit 1; }
[ "$(grep -c 'DRY_RUN: would migrate' "$W/dry.out")" = "$USERS" ] || { echo "bench: not every user passed the gate" >&2; cat "$W/dry.out" >&2; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
best() { sort -n | head -1; }
# Reference, measured in the same run: what the bash original did per marker (systemctl
# is-active + show, then `runuser -u <u> -- sqlite3 -readonly` with its one-statement gate SQL).
cat >"$W/reference.sh" <<'SH'
#!/bin/bash
W=$1
for m in "$W"/state/deferred/*; do
  u=${m##*/}
  systemctl is-active --quiet "t3-serve@$u.service" || continue
  systemctl show -p ActiveEnterTimestamp --value --timestamp=unix "t3-serve@$u.service" >/dev/null
  runuser -u "$u" -- sqlite3 -readonly "$W/home/$u/.t3/userdata/state.sqlite" \
    "SELECT (SELECT count(*) FROM projection_thread_sessions WHERE active_turn_id IS NOT NULL) || '|' || COALESCE(CAST((julianday('now') - julianday(replace(replace(max(updated_at),'T',' '),'Z',''))) * 86400 AS INTEGER), '') FROM projection_thread_sessions;" >/dev/null
done
SH
chmod 755 "$W/reference.sh"
have_ref=0; command -v sqlite3 >/dev/null && command -v runuser >/dev/null && have_ref=1
ref=()
dry=() st=()
for _ in $(seq "$RUNS"); do
  dry+=("$(measure "$FPATH" "$BIN" --dry-run "${args[@]}")")
  st+=("$(measure "$FPATH" "$BIN" status --json "${args[@]}")")
  [ "$have_ref" = 1 ] && ref+=("$(measure "$FPATH:/usr/sbin:/sbin" "$W/reference.sh" "$W")")
done
env -i PATH="$FPATH" "$BIN" status --json "${args[@]}" | python3 -c '
import json,sys; d=json.load(sys.stdin); a=[m["action"] for m in d["markers"]]
assert len(a)=='"$USERS"' and set(a)=={"migrate"}, a' || { echo "bench: status disagrees" >&2; exit 1; }
dry_t=$(printf '%s\n' "${dry[@]}" | awk '{print $1}' | median)
st_t=$(printf '%s\n' "${st[@]}" | awk '{print $1}' | median)
if [ "$have_ref" = 1 ]; then
  ref_t=$(printf '%s\n' "${ref[@]}" | awk '{print $1}' | median)
  ref_row="| bash original's per-marker work (reference, same run) | — | ${ref_t} s | dry-run pass = $(awk -v a="$dry_t" -v b="$ref_t" 'BEGIN{printf "%.2f", a/b}')× the reference |"
else
  ref_row="| bash original's per-marker work (reference) | — | not measured (sqlite3/runuser missing) | — |"
fi
dry_b=$(printf '%s\n' "${dry[@]}" | awk '{print $1}' | best)
st_b=$(printf '%s\n' "${st[@]}" | awk '{print $1}' | best)
dry_cpu=$(printf '%s\n' "${dry[@]}" | awk '{print $3}' | median)
st_cpu=$(printf '%s\n' "${st[@]}" | awk '{print $3}' | median)
load=$(cut -d' ' -f1 /proc/loadavg)
own=$(printf '%s\n' "${dry[@]}" "${st[@]}" | awk '{print $4}' | sort -n | tail -1)
own_mib=$(awk -v k="$own" 'BEGIN{printf "%.1f", k/1024}')
# The per-user gate child on its own (RUSAGE_CHILDREN above would also count the measuring
# python's pre-exec fork image): GNU time's max RSS of one `__as-user read` of a 100k-row DB.
rss=$(/usr/bin/time -f %M "$BIN" __as-user read "$W/template.sqlite" 2>&1 >/dev/null | tail -1)
rss_mib=$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')
ok() { awk -v a="$1" -v b="$2" 'BEGIN{print (a<=b) ? "ok ("sprintf("%.2f", a/b)" of target)" : "MISSED ("sprintf("%.2f", a/b)"x target)"}'; }
mkdir -p target/bench
{
  echo "Workload: $USERS users × $ROWS thread rows (${DBSIZE} MiB DB each), every user idle, fakes for systemctl/t3/npm; median of $RUNS runs on $(nproc) cores (load average $load at the end); RSS per process (the pass itself, sampled VmHWM; one per-user gate child, GNU time); CPU = user+sys of the whole process tree, less sensitive than wall time to other load on the host."
  echo
  echo "| figure | target | measured | ratio/ok |"
  echo "|---|---|---|---|"
  echo "| dry-run pass, $USERS users | ≤ 1 s | ${dry_t} s (best ${dry_b} s) | $(ok "$dry_t" 1) |"
  echo "| \`status --json\`, $USERS users | ≤ 1 s | ${st_t} s (best ${st_b} s) | $(ok "$st_t" 1) |"
  echo "| dry-run pass CPU time (all processes) | — | ${dry_cpu} s | — |"
  echo "| \`status --json\` CPU time (all processes) | — | ${st_cpu} s | — |"
  echo "$ref_row"
  echo "| peak RSS of one per-user gate child | ≤ 20 MiB | ${rss_mib} MiB | $(ok "$rss_mib" 20) |"
  echo "| peak RSS of the pass process itself (VmHWM) | ≤ 20 MiB | ${own_mib} MiB | $(ok "$own_mib" 20) |"
} >target/bench/t3-migrate-idle.md
cat target/bench/t3-migrate-idle.md
