# shellcheck shell=bash disable=SC2012
# Helpers for scripts/demo.d/*.sh scenarios (sourced by demo.sh).
# Each scenario runs in a subshell; it may write a one-line description to
# "$DEMO_TMP/<file name without .sh>.scenario" and must exit non-zero on failure.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL [SECONDS]
wait_http() {
  local url=$1 secs=${2:-30} i=0
  while ((i < secs * 10)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1; i=$((i + 1))
  done
  echo "timed out waiting for $url" >&2; return 1
}

# register a cleanup command run on exit (even on Ctrl-C)
on_exit() { echo "$*" >>"$DEMO_TMP/$(date +%s%N).cleanup"; }

# start_postgres: sets PGPORT and PGDSN_BASE; server runs as user postgres when root
start_postgres() {
  local bindir; bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PGDATA_DIR="$DEMO_TMP/pg"; mkdir -p "$PGDATA_DIR"; PGPORT=$(free_port)
  local as=(); if [ "$(id -u)" = 0 ]; then chown postgres: "$PGDATA_DIR"; as=(runuser -u postgres --); fi
  "${as[@]}" "$bindir/initdb" -D "$PGDATA_DIR/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
  "${as[@]}" "$bindir/pg_ctl" -D "$PGDATA_DIR/data" -l "$PGDATA_DIR/log" -o "-p $PGPORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1" -w start >/dev/null
  on_exit "${as[*]} $bindir/pg_ctl -D $PGDATA_DIR/data -m immediate stop"
  export PGPORT
  echo "postgres 15 on 127.0.0.1:$PGPORT" >&2
}

# start_pushgateway: sets PUSHGATEWAY (URL)
start_pushgateway() {
  local port; port=$(free_port)
  # --persistence.file= : Debian's default file is shared by every instance on the machine.
  prometheus-pushgateway --web.listen-address="127.0.0.1:$port" --log.level=error --persistence.file= >/dev/null 2>&1 &
  on_exit "kill $!"
  PUSHGATEWAY="http://127.0.0.1:$port"; export PUSHGATEWAY
  wait_http "$PUSHGATEWAY/-/ready"
  echo "pushgateway on $PUSHGATEWAY" >&2
}
