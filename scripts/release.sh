#!/usr/bin/env bash
# Write the release artifacts into target/release-artifacts/ (replaced as a whole at the end):
#   homelab-ops.oci.tar                       the image (scripts/image.sh)
#   homelab-ops-<v>-x86_64-linux-static.tar.gz  the six static binaries + LICENSE, CHANGELOG
#   <tool>_<v>-1_amd64.deb                    vault-token-renew, t3-migrate-idle with their units
#   completions/{bash,zsh,fish}/…, man/<tool>.1  generated from the clap definitions
#   homelab-ops-<v>.cdx.json                  CycloneDX SBOM of the linked crates
#   SHA256SUMS                                over every file above
#   scripts/release.sh [--no-build] [--out DIR]
#     --no-build  reuse the static build in target/static (scripts/image.sh built it)
# One static build serves everything: the .debs and the tarball take the binaries from
# target/static, never a second compile.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=1 out=target/release-artifacts
while (($#)); do
  case $1 in
    --no-build) build=0; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "release.sh: unknown argument $1; see the header of scripts/release.sh" >&2; exit 2 ;;
  esac
done

# Preconditions first (image.sh checks its own again): nothing is written before they hold.
need() { # command package install-command
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "release.sh: $1 not found ($2): install it with \`$3\` (or run bash scripts/setup.sh)" >&2
  exit 2
}
need cargo-deb cargo-deb "cargo install --locked cargo-deb"
need lintian lintian "apt-get install -y lintian"
need dpkg-deb dpkg "apt-get install -y dpkg"
need umoci umoci "apt-get install -y umoci"
need skopeo skopeo "apt-get install -y skopeo"
need jq jq "apt-get install -y jq"
need sha256sum coreutils "apt-get install -y coreutils"

target=x86_64-unknown-linux-gnu
static=target/static/$target/release
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
tools=(vault-token-renew t3-migrate-idle goldmane-edge-aggregator edges-digest compat-gate nightly-report)
debs=(vault-token-renew t3-migrate-idle)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

mkdir -p target
work=$(mktemp -d "$root/target/.release.XXXXXX")
trap 'rm -rf "$work"' EXIT
art=$work/artifacts
mkdir "$art"

# 1. The image, and with it the static build of all binaries.
image_args=(--out "$art")
((build)) || image_args+=(--no-build)
bash scripts/image.sh "${image_args[@]}" >"$work/image.txt"
for b in "${tools[@]}" homelab-ops-docs; do
  [ -x "$static/$b" ] || { echo "release.sh: $static/$b not built: run bash scripts/release.sh without --no-build" >&2; exit 2; }
done

# 2. Completions and man pages, from the same clap definitions the binaries parse with.
"$static/homelab-ops-docs" completions "$art/completions"
"$static/homelab-ops-docs" man "$art/man"

# 3. Tarball of the six stand-alone static binaries.
name=homelab-ops-$version-x86_64-linux-static
install -d "$work/$name"
for b in "${tools[@]}"; do install -m 0755 "$static/$b" "$work/$name/$b"; done
install -m 0644 LICENSE CHANGELOG.md "$work/$name/"
tar -C "$work" --sort=name --format=gnu --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  -cf - "$name" | gzip -9n >"$art/$name.tar.gz"

# 4. .deb packages (cargo-deb metadata in each crate's Cargo.toml). Their units are systemd/'s
# with /usr/local/bin rewritten to /usr/bin (Debian policy: a package never installs under
# /usr/local); the staging dir target/static/deb/ is the fixed path the metadata names.
deb=target/static/deb
rm -rf "$deb"
install -d "$deb"
for u in systemd/*.service systemd/*.timer; do
  sed 's#/usr/local/bin/#/usr/bin/#g' "$u" >"$deb/$(basename "$u")"
done
cp -r "$art/man" "$art/completions" "$deb/"
for p in "${debs[@]}"; do
  # Debian-format changelog (lintian wants one); the full history is CHANGELOG.md.
  {
    echo "$p ($version-1) unstable; urgency=medium"
    echo
    echo "  * Release $version of homelab-ops (see its CHANGELOG.md)."
    echo
    echo " -- Viktor Barzin <viktorbarzin@users.noreply.github.com>  $(LC_ALL=C date -u -R -d "@$epoch")"
  } >"$deb/$p.changelog"
  SOURCE_DATE_EPOCH=$epoch CARGO_TARGET_DIR=target/static \
    cargo deb -p "$p" --no-build --no-strip --target "$target" --output "$art/" >"$work/deb-$p.log" 2>&1 \
    || { cat "$work/deb-$p.log" >&2; echo "release.sh: cargo deb -p $p failed (above)" >&2; exit 1; }
done
for f in "$art"/*.deb; do
  if ! lintian --fail-on error "$f" >"$work/lintian.log" 2>&1; then
    cat "$work/lintian.log" >&2
    echo "release.sh: lintian reports errors in $(basename "$f") (above); fix the cargo-deb metadata" >&2
    exit 1
  fi
done

# 5. SBOM of what the shipped binaries link (see crates/homelab-ops/src/sbom.rs for why not
# cargo-cyclonedx).
cargo metadata --format-version 1 --locked --filter-platform "$target" >"$work/metadata.json"
SOURCE_DATE_EPOCH=$epoch "$static/homelab-ops-docs" sbom "$work/metadata.json" Cargo.lock \
  >"$art/homelab-ops-$version.cdx.json"

# 6. Checksums over all of it.
(cd "$art" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum) >"$work/SHA256SUMS"
mv "$work/SHA256SUMS" "$art/SHA256SUMS"

# Publish: the old directory goes only once the new one is complete.
mkdir -p "$(dirname "$out")"
[ ! -e "$out" ] || mv "$out" "$work/previous"
mv "$art" "$out"
grep -v "^archive: " "$work/image.txt"
echo "archive: $out/homelab-ops.oci.tar"
echo "release: $(find "$out" -type f | wc -l) files in $out (SHA256SUMS over all)"
