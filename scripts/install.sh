#!/usr/bin/env bash
# Install release binaries and systemd units under DESTDIR/PREFIX; --uninstall removes them.
#   scripts/install.sh [--prefix /usr/local] [--destdir /] [--uninstall] [--no-build]
#                      [--from target/release] [--npm-prefix DIR] [--user]
# System mode (default): binaries to PREFIX/bin, system units to PREFIX/lib/systemd/system,
#   user units (lines "# Manager: user") to PREFIX/lib/systemd/user, the OnFailure= reporter
#   to PREFIX/lib/homelab-ops/, and the drop-in t3-migrate-idle.service.d/npm-prefix.conf
#   that opens the global npm install (--npm-prefix, default `npm prefix -g`; /usr without
#   npm) to the unit's sandbox. Warns when ~/.config/systemd/user units would shadow ours.
# User mode (--user): the user-manager binaries to ~/.local/bin, their units to
#   ~/.config/systemd/user (the runbook's live paths), replacing the bash units there; every
#   replaced file is backed up as <file>.homelab-ops-backup and restored by --user --uninstall.
# Exit: 0 done, 1 failed (one line naming the input), 2 usage error.
# Each step is a function so later blocks (e.g. completions, man pages) can be appended.
set -euo pipefail
cd "$(dirname "$0")/.."

MARK="# Installed by homelab-ops scripts/install.sh"
BACKUP_SUFFIX=.homelab-ops-backup
prefix=/usr/local destdir="" uninstall=0 build=1 from=target/release npm_prefix="" user_mode=0

die() { echo "install.sh: $*" >&2; exit 1; }
usage_error() { echo "install.sh: $* (see the header of scripts/install.sh)" >&2; exit 2; }

parse_args() {
  while (($#)); do
    case $1 in
      --prefix) [ $# -ge 2 ] || usage_error "--prefix needs a value"; prefix=$2; shift 2 ;;
      --destdir) [ $# -ge 2 ] || usage_error "--destdir needs a value"; destdir=$2; shift 2 ;;
      --uninstall) uninstall=1; shift ;;
      --no-build) build=0; shift ;;
      --from) [ $# -ge 2 ] || usage_error "--from needs a value"; from=$2; build=0; shift 2 ;;
      --npm-prefix) [ $# -ge 2 ] || usage_error "--npm-prefix needs a value"; npm_prefix=$2; shift 2 ;;
      --user) user_mode=1; shift ;;
      *) usage_error "unknown argument $1" ;;
    esac
  done
}

# Binary crates (a src/main.rs) and the unit files with the manager(s) they run under.
list_bins() {
  local c
  for c in crates/*/; do
    [ -f "$c/src/main.rs" ] && basename "$c"
  done
}
unit_files() {
  local u
  for u in systemd/*.service systemd/*.timer; do
    [ -f "$u" ] && echo "$u"
  done
}
# "system", "user" or "system user" from the unit's "# Manager:" line (default system).
unit_managers() {
  local m
  m=$(sed -n 's/^# Manager: //p' "$1" | head -n1)
  echo "${m:-system}"
}
runs_under() { [[ " $(unit_managers "$1") " == *" $2 "* ]]; }

# Copy a unit, pointing its ExecStart= at the installed binaries and marking it as ours.
render_unit() { # src dest bindir libdir
  { echo "$MARK"; sed -e "s#/usr/local/bin/#$3/#g" -e "s#/usr/local/lib/homelab-ops/#$4/#g" "$1"; } >"$2"
  chmod 0644 "$2"
}

# The global npm prefix whose lib/node_modules and bin a t3 rollback rewrites (issue 15 item 1).
detect_npm_prefix() {
  if [ -n "$npm_prefix" ]; then
    :
  elif command -v npm >/dev/null 2>&1; then
    local out rc=0
    out=$(npm prefix -g 2>/dev/null) || rc=$?
    if [ "$rc" -ne 0 ] || [ -z "$out" ]; then
      die "npm prefix -g failed (exit $rc): pass --npm-prefix DIR (the prefix t3 was installed with by npm i -g)"
    fi
    npm_prefix=$out
  else
    npm_prefix=/usr
    echo "install.sh: note: npm not found; assuming npm prefix /usr (t3 in /usr/lib/node_modules); pass --npm-prefix DIR if t3 lives elsewhere" >&2
  fi
  if [[ $npm_prefix != /* || $npm_prefix =~ [[:space:]] || $npm_prefix == *'%'* ]]; then
    die "--npm-prefix $npm_prefix: must be an absolute path without whitespace or %"
  fi
  npm_prefix=${npm_prefix%/}
  [ -n "$npm_prefix" ] || npm_prefix=/
}

write_npm_dropin() { # unitdir
  local d="$1/t3-migrate-idle.service.d"
  install -d "$d"
  {
    echo "$MARK (npm prefix $npm_prefix)"
    echo "# t3 is one global npm install: a rollback (npm i -g t3@<last-good>) rewrites both."
    echo "[Service]"
    echo "ReadWritePaths=$npm_prefix/lib/node_modules $npm_prefix/bin"
  } >"$d/npm-prefix.conf"
  chmod 0644 "$d/npm-prefix.conf"
}

# Per-user ~/.config/systemd/user units take precedence over PREFIX/lib/systemd/user.
warn_shadowing() {
  local u name h
  while read -r u; do
    runs_under "$u" user || continue
    name=$(basename "$u")
    for h in "${HOME:-}" /home/*; do
      if [ -z "$h" ] || [ ! -f "$h/.config/systemd/user/$name" ]; then continue; fi
      echo "install.sh: WARNING: $h/.config/systemd/user/$name shadows the installed $name for that user; run scripts/install.sh --user as that user (or remove the file)" >&2
    done
  done < <(unit_files)
}

install_system() {
  local bindir="$destdir$prefix/bin" unitdir="$destdir$prefix/lib/systemd/system"
  local userunitdir="$destdir$prefix/lib/systemd/user" libdir="$destdir$prefix/lib/homelab-ops"
  local b u n=0
  detect_npm_prefix
  ((build)) && cargo build --release --workspace --bins --locked
  install -d "$bindir" "$unitdir" "$userunitdir" "$libdir"
  while read -r b; do
    install -m 0755 "$from/$b" "$bindir/$b"
    n=$((n + 1))
  done < <(list_bins)
  install -m 0755 systemd/homelab-unit-failure.sh "$libdir/homelab-unit-failure"
  while read -r u; do
    runs_under "$u" system && render_unit "$u" "$unitdir/$(basename "$u")" "$prefix/bin" "$prefix/lib/homelab-ops"
    runs_under "$u" user && render_unit "$u" "$userunitdir/$(basename "$u")" "$prefix/bin" "$prefix/lib/homelab-ops"
  done < <(unit_files)
  write_npm_dropin "$unitdir"
  warn_shadowing
  echo "installed $n binaries to $bindir and units to $unitdir, $userunitdir (npm prefix $npm_prefix)" >&2
}

uninstall_system() {
  local bindir="$destdir$prefix/bin" unitdir="$destdir$prefix/lib/systemd/system"
  local userunitdir="$destdir$prefix/lib/systemd/user" libdir="$destdir$prefix/lib/homelab-ops"
  local b u
  while read -r b; do rm -f "$bindir/$b"; done < <(list_bins)
  while read -r u; do
    rm -f "$unitdir/$(basename "$u")" "$userunitdir/$(basename "$u")"
  done < <(unit_files)
  rm -f "$unitdir/t3-migrate-idle.service.d/npm-prefix.conf" "$libdir/homelab-unit-failure"
  rmdir "$unitdir/t3-migrate-idle.service.d" "$libdir" 2>/dev/null || true
  echo "uninstalled from $destdir$prefix" >&2
}

# Keep the first copy of a file we replace (the bash units/script of the runbook).
backup_once() { # path
  if [ -e "$1" ] && [ ! -e "$1$BACKUP_SUFFIX" ] && ! head -n1 "$1" 2>/dev/null | grep -qF "$MARK"; then
    cp -p "$1" "$1$BACKUP_SUFFIX"
  fi
}

user_paths() {
  [ -n "${HOME:-}" ] || die "HOME is unset: --user installs into ~/.local/bin and ~/.config/systemd/user"
  ubin="$destdir$HOME/.local/bin" ulib="$destdir$HOME/.local/lib/homelab-ops"
  uunits="$destdir$HOME/.config/systemd/user"
}

# Binaries whose units run under the user manager (vault-token-renew).
user_bins() {
  local u
  while read -r u; do
    runs_under "$u" user || continue
    sed -n 's#^ExecStart=/usr/local/bin/\([A-Za-z0-9_-]*\).*#\1#p' "$u"
  done < <(unit_files) | sort -u
}

install_user() {
  local ubin ulib uunits b u dest n=0
  user_paths
  ((build)) && cargo build --release --workspace --bins --locked
  install -d "$ubin" "$ulib" "$uunits"
  while read -r b; do
    [ -f "$from/$b" ] || die "--from $from: $b not built (cargo build --release -p $b)"
    if [ -e "$ubin/$b" ] && ! cmp -s "$from/$b" "$ubin/$b"; then
      [ -e "$ubin/$b$BACKUP_SUFFIX" ] || cp -p "$ubin/$b" "$ubin/$b$BACKUP_SUFFIX"
    fi
    install -m 0755 "$from/$b" "$ubin/$b"
    n=$((n + 1))
  done < <(user_bins)
  install -m 0755 systemd/homelab-unit-failure.sh "$ulib/homelab-unit-failure"
  while read -r u; do
    runs_under "$u" user || continue
    dest="$uunits/$(basename "$u")"
    backup_once "$dest"
    # shellcheck disable=SC2016 # %h is systemd's specifier, not a shell variable
    render_unit "$u" "$dest" '%h/.local/bin' '%h/.local/lib/homelab-ops'
  done < <(unit_files)
  echo "installed $n binaries to $ubin and user units to $uunits; then: systemctl --user daemon-reload && systemctl --user enable --now vault-token-renew.timer" >&2
}

uninstall_user() {
  local ubin ulib uunits b u dest
  user_paths
  while read -r b; do
    rm -f "$ubin/$b"
    [ -e "$ubin/$b$BACKUP_SUFFIX" ] && mv "$ubin/$b$BACKUP_SUFFIX" "$ubin/$b"
  done < <(user_bins)
  while read -r u; do
    runs_under "$u" user || continue
    dest="$uunits/$(basename "$u")"
    rm -f "$dest"
    [ -e "$dest$BACKUP_SUFFIX" ] && mv "$dest$BACKUP_SUFFIX" "$dest"
  done < <(unit_files)
  rm -f "$ulib/homelab-unit-failure"
  rmdir "$ulib" 2>/dev/null || true
  echo "uninstalled user units from $uunits (backed-up files restored); then: systemctl --user daemon-reload" >&2
}

# --- completions and man pages (issue 16): generated from the clap definitions by
# homelab-ops-docs (crate homelab-ops); installed and removed with the system binaries. ---
docs_files() { # tool → the four installed paths
  local s=$destdir$prefix/share
  printf '%s\n' "$s/man/man1/$1.1" "$s/bash-completion/completions/$1" \
    "$s/zsh/site-functions/_$1" "$s/fish/vendor_completions.d/$1.fish"
}

install_docs() {
  local docs_bin=$from/homelab-ops-docs docs_tmp b f dst
  [ -x "$docs_bin" ] || die "$docs_bin missing: build it with cargo build --release -p homelab-ops"
  docs_tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: the path is local to this function
  trap "rm -rf '$docs_tmp'" EXIT
  "$docs_bin" completions "$docs_tmp/completions"
  "$docs_bin" man "$docs_tmp/man"
  while read -r b; do
    mapfile -t dst < <(docs_files "$b")
    for f in "$docs_tmp/man/$b.1" "$docs_tmp/completions/bash/$b" "$docs_tmp/completions/zsh/_$b" \
      "$docs_tmp/completions/fish/$b.fish"; do
      install -D -m 0644 "$f" "${dst[0]}"
      dst=("${dst[@]:1}")
    done
  done < <(list_bins)
  echo "installed man pages and bash/zsh/fish completions under $destdir$prefix/share" >&2
}

uninstall_docs() {
  local b
  while read -r b; do docs_files "$b" | xargs -d '\n' rm -f; done < <(list_bins)
}
# --- end completions and man pages ---

main() {
  parse_args "$@"
  if ((user_mode)); then
    if ((uninstall)); then uninstall_user; else install_user; fi
  elif ((uninstall)); then
    uninstall_docs
    uninstall_system
  else
    install_system
    install_docs
  fi
}

main "$@"
