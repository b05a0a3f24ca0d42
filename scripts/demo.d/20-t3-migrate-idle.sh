# shellcheck shell=bash disable=SC2012
# t3-migrate-idle demo (sourced in a subshell by scripts/demo.sh; needs root like the real job).
# Two throwaway system users with real SQLite state DBs: one idle for two hours, one with an
# agent turn in flight. Recording fakes stand in for systemctl, t3 and npm (first on PATH);
# a small HTTP server answers like t3-dispatch (302 + Set-Cookie: t3_session=...).
# Expected: status shows migrate/skip-not-idle, the dry run acts on nothing, the live pass
# migrates the idle user (backup as the user, restart, pairing verified) and defers the busy one.
set -euo pipefail
echo "dry-run + live pass: idle user migrated, busy user deferred" >"$DEMO_TMP/20-t3-migrate-idle.scenario"
BIN="$DEMO_BIN/t3-migrate-idle"
[ -x "$BIN" ] || { echo "missing $BIN (cargo build --release -p t3-migrate-idle)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "t3-migrate-idle runs as root (it reads each DB as its owner); rerun the demo as root" >&2; exit 1; }

W="$DEMO_TMP/t3mi"
mkdir -p "$W"/{fakebin,home,etc,state/deferred,backups,run}
chmod 755 "$W" "$W"/home
CALLS="$W/calls.log"; : >"$CALLS"
IDLE=t3demo-idle BUSY=t3demo-busy
for u in $IDLE $BUSY; do
  id "$u" >/dev/null 2>&1 || useradd --system --user-group --no-create-home --home-dir "$W/home/$u" --shell /usr/sbin/nologin "$u"
  on_exit "userdel $u; groupdel $u"
done
NOW=$(date +%s)

# --- recording fakes -------------------------------------------------------------------------
cat >"$W/fakebin/systemctl" <<SH
#!/bin/sh
echo "systemctl \$*" >>"$CALLS"
case "\$*" in
  "show -p ActiveState --value t3-autoupdate.service"|"show -p ActiveState --value t3-watchdog.service") echo inactive;;
  "is-active --quiet t3-serve@$IDLE.service"|"is-active --quiet t3-serve@$BUSY.service") exit 0;;
  "show -p ActiveEnterTimestamp --value --timestamp=unix "*) echo "@$((NOW - 86400))";;
  "restart "*|"stop "*|"start "*) exit 0;;
  *) exit 3;;
esac
SH
printf '#!/bin/sh\necho "t3 $*" >>"%s"\necho "t3 v0.0.36-nightly.20261123.7"\n' "$CALLS" >"$W/fakebin/t3"
printf '#!/bin/sh\necho "npm $*" >>"%s"\n' "$CALLS" >"$W/fakebin/npm"
chmod 755 "$W"/fakebin/*

# --- real SQLite state DBs, owned by their users (dirs 0700, files 0600) ------------------------
python3 - "$W/home" "$IDLE" "$BUSY" <<'PY'
import sqlite3, sys, os, datetime as dt
home, idle, busy = sys.argv[1:]
now = dt.datetime.now(dt.timezone.utc)
iso = lambda d: (now - d).strftime("%Y-%m-%dT%H:%M:%S.000Z")
for user, rows in [
    (idle, [(f"t{i}", None, iso(dt.timedelta(hours=2, minutes=i))) for i in range(89)]),
    (busy, [("t0", "turn-42", iso(dt.timedelta(seconds=20)))] +
           [(f"t{i}", None, iso(dt.timedelta(hours=3))) for i in range(1, 5)]),
]:
    d = os.path.join(home, user, ".t3", "userdata"); os.makedirs(d, exist_ok=True)
    c = sqlite3.connect(os.path.join(d, "state.sqlite"))
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE projection_thread_sessions(thread_id TEXT PRIMARY KEY, active_turn_id TEXT, updated_at TEXT NOT NULL)")
    c.executemany("INSERT INTO projection_thread_sessions VALUES (?,?,?)", rows)
    c.commit(); c.close()
PY
for u in $IDLE $BUSY; do
  chown -R "$u:$u" "$W/home/$u"; chmod -R u=rwX,go= "$W/home/$u"
done

# --- markers as t3-autoupdate writes them, deferred an hour ago -------------------------------
for u in $IDLE $BUSY; do
  echo "0.0.36-nightly.20261123.7" >"$W/state/deferred/$u"
  touch -d "@$((NOW - 3600))" "$W/state/deferred/$u"
done
echo "0.0.35" >"$W/state/last-good"
printf '# authentik=os user\n%s=%s\n%s=%s\n' wizard "$IDLE" alice "$BUSY" >"$W/etc/ttyd-user-map"

# --- t3-dispatch stand-in: mints t3_session for the user named in X-authentik-username ---------
DPORT=$(free_port)
python3 - "$DPORT" "$W/dispatch.log" <<'PY' &
import http.server, sys
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        who = self.headers.get("X-authentik-username", "")
        with open(log, "a") as f: f.write(f"GET {self.path} X-authentik-username={who} Sec-Fetch-Dest={self.headers.get('Sec-Fetch-Dest')}\n")
        self.send_response(302); self.send_header("Location", "/")
        if who: self.send_header("Set-Cookie", f"t3_session=demo-{who}; Path=/; HttpOnly")
        self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
on_exit "kill $!"
wait_http "http://127.0.0.1:$DPORT/" 10
: >"$W/dispatch.log"

run() {
  env -i PATH="$W/fakebin:/usr/bin:/bin" "$BIN" "$@" \
    --state-dir "$W/state" --backup-dest "$W/backups" --home-root "$W/home" \
    --freeze-file "$W/etc/t3-autoupdate.freeze" --user-map "$W/etc/ttyd-user-map" \
    --lock-file "$W/run/t3-migrate-idle.lock" --dispatch "127.0.0.1:$DPORT" \
    --metrics-textfile "$W/t3_migrate_idle.prom"
}
show() { sed 's/^/    /'; }

echo "-- t3-migrate-idle status (read-only)"
run status | show
echo "-- dry run (T3_DRY_RUN=1 twin: --dry-run): decides, acts on nothing"
: >"$CALLS"
run --dry-run | show
! grep -Eq '^(systemctl (restart|stop|start)|npm)' "$CALLS" || { echo "dry run acted" >&2; exit 1; }
echo "-- live pass"
: >"$CALLS"
set +e; run >"$W/pass.out"; rc=$?; set -e
show <"$W/pass.out"
echo "   exit code $rc"
echo "-- what the fakes saw (state-changing calls)"
grep -E '^(systemctl (restart|stop|start)|npm)' "$CALLS" | show
echo "-- what the dispatch stand-in saw"
show <"$W/dispatch.log"
echo "-- backups (taken as the user with VACUUM INTO)"
ls -l "$W/backups/$IDLE" | tail -n +2 | awk '{print $1, $3":"$4, $5, $9}' | show
echo "-- markers left"
ls "$W/state/deferred" | show
echo "-- metrics textfile (excerpt)"
grep -E '^t3_migrate_idle_(markers|marker_age_seconds|last_pass|last_result\{result="ok"\})' "$W/t3_migrate_idle.prom" | show

[ "$rc" = 0 ]
grep -qx "t3-migrate-idle: migrated t3-serve@$IDLE.service -> 0.0.36-nightly.20261123.7 (idle restart)" "$W/pass.out"
grep -q "t3-migrate-idle: skipping t3-serve@$BUSY.service: not idle (active_turns=1 " "$W/pass.out"
grep -qx "t3-migrate-idle: idle-migrate pass complete (migrated=1 skipped=1)" "$W/pass.out"
[ ! -e "$W/state/deferred/$IDLE" ] && [ -e "$W/state/deferred/$BUSY" ]
[ "$(grep -c '^systemctl restart' "$CALLS")" = 1 ]
echo "OK: $IDLE migrated (backup, restart, pairing verified), $BUSY deferred (turn in flight)"
