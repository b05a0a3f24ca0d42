#!/usr/bin/env bash
# Install release binaries and systemd units under DESTDIR/PREFIX; --uninstall removes them.
#   scripts/install.sh [--prefix /usr/local] [--destdir /] [--uninstall] [--no-build] [--from target/release]
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local destdir="" uninstall=0 build=1 from=target/release
while (($#)); do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --destdir) destdir=$2; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --no-build) build=0; shift ;;
    --from) from=$2; build=0; shift 2 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
bins=()
for c in crates/*/; do
  n=$(basename "$c")
  [ -f "$c/src/main.rs" ] && bins+=("$n")
done
bindir="$destdir$prefix/bin"
unitdir="$destdir$prefix/lib/systemd/system"
userunitdir="$destdir$prefix/lib/systemd/user"
# --- completions and man pages (issue 16): generated from the clap definitions by
# homelab-ops-docs; this block and the one at the end are self-contained. ---
docs_files() { # tool → the four installed paths
  local s=$destdir$prefix/share
  printf '%s\n' "$s/man/man1/$1.1" "$s/bash-completion/completions/$1" \
    "$s/zsh/site-functions/_$1" "$s/fish/vendor_completions.d/$1.fish"
}
if ((uninstall)); then
  for b in "${bins[@]}"; do docs_files "$b" | xargs -d '\n' rm -f; done
fi
# --- end completions and man pages ---
if ((uninstall)); then
  for b in "${bins[@]}"; do rm -f "$bindir/$b"; done
  for u in systemd/*.service systemd/*.timer; do
    [ -f "$u" ] || continue
    rm -f "$unitdir/$(basename "$u")" "$userunitdir/$(basename "$u")"
  done
  echo "uninstalled from $destdir$prefix" >&2
  exit 0
fi
((build)) && cargo build --release --workspace --bins --locked
install -d "$bindir" "$unitdir" "$userunitdir"
for b in "${bins[@]}"; do install -m 0755 "$from/$b" "$bindir/$b"; done
for u in systemd/*.service systemd/*.timer; do
  [ -f "$u" ] || continue
  # vault-token-renew runs as a user unit; the others are system units.
  case $(basename "$u") in
    vault-token-renew.*) dest=$userunitdir ;;
    *) dest=$unitdir ;;
  esac
  sed "s#/usr/local/bin/#$prefix/bin/#g" "$u" >"$dest/$(basename "$u")"
  chmod 0644 "$dest/$(basename "$u")"
done
echo "installed ${#bins[@]} binaries to $bindir and units to $unitdir, $userunitdir" >&2
# --- completions and man pages (issue 16), continued ---
docs_bin=$from/homelab-ops-docs
[ -x "$docs_bin" ] || { echo "install.sh: $docs_bin missing: build it with cargo build --release -p homelab-ops" >&2; exit 2; }
docs_tmp=$(mktemp -d)
trap 'rm -rf "$docs_tmp"' EXIT
"$docs_bin" completions "$docs_tmp/completions"
"$docs_bin" man "$docs_tmp/man"
for b in "${bins[@]}"; do
  mapfile -t dst < <(docs_files "$b")
  for f in "$docs_tmp/man/$b.1" "$docs_tmp/completions/bash/$b" "$docs_tmp/completions/zsh/_$b" \
    "$docs_tmp/completions/fish/$b.fish"; do
    install -D -m 0644 "$f" "${dst[0]}"
    dst=("${dst[@]:1}")
  done
done
echo "installed man pages and bash/zsh/fish completions under $destdir$prefix/share" >&2
