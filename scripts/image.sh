#!/usr/bin/env bash
# Build the one OCI image `homelab-ops` (all six tools, one static multicall binary, on scratch)
# into target/image/homelab-ops.oci.tar and print its reference and digest.
#   scripts/image.sh [--no-build] [--binary PATH] [--out DIR]
#     --no-build     reuse the static build in target/static (no cargo run)
#     --binary PATH  assemble from this multicall binary instead (implies --no-build)
#     --out DIR      write the archive into DIR instead of target/image
# Tools: skopeo + umoci (Debian), GNU tar, jq; the CA bundle from Debian's ca-certificates.
# Reproducible: the layer is a sorted tar with fixed owners and SOURCE_DATE_EPOCH mtimes (the
# HEAD commit time unless set), config/history carry that date; the image is assembled twice
# and the two digests must match. SOURCE_DATE_EPOCH is exported to the assembly only, never to
# cargo (ring's build script reruns when it changes).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=1 binary="" out=target/image
while (($#)); do
  case $1 in
    --no-build) build=0; shift ;;
    --binary) binary=$2; build=0; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "image.sh: unknown argument $1; see the header of scripts/image.sh" >&2; exit 2 ;;
  esac
done

# Preconditions first: nothing is written anywhere before they all hold.
need() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "image.sh: $1 not found: install it with \`apt-get install -y $2\` (or run bash scripts/setup.sh)" >&2
  exit 2
}
need umoci umoci
need skopeo skopeo
need jq jq
need sha256sum coreutils
tar --version 2>/dev/null | grep -q 'GNU tar' || {
  echo "image.sh: GNU tar not found: install it with \`apt-get install -y tar\`" >&2
  exit 2
}
cabundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$cabundle" ] || {
  echo "image.sh: $cabundle missing: install it with \`apt-get install -y ca-certificates\`" >&2
  exit 2
}

target=x86_64-unknown-linux-gnu
static_dir=target/static/$target/release
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "image.sh: no [workspace.package] version in Cargo.toml; set one" >&2; exit 2; }
ref=ghcr.io/viktorbarzin/homelab-ops:$version
tools=(vault-token-renew t3-migrate-idle goldmane-edge-aggregator edges-digest compat-gate nightly-report)

# The commit stamp for `--version`, computed fresh (the build script's own git lookup may lag
# behind unstaged edits).
commit=unknown
if git -C "$root" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  commit=$(git -C "$root" rev-parse --short=12 HEAD)
  [ -z "$(git -C "$root" status --porcelain --untracked-files=no)" ] || commit+=-dirty
fi

if ((build)); then
  static_build() {
    # One cargo run for the multicall binary and the six stand-alone binaries (the release
    # tarball and .debs reuse them), static-pie via crt-static for the target only (build
    # scripts and proc macros stay dynamic host code).
    local pkgs=(-p homelab-ops --features homelab-ops/multicall) t
    for t in "${tools[@]}"; do pkgs+=(-p "$t"); done
    # --remap-path-prefix: panic locations name /src and /cargo, not this checkout's or this
    # user's paths, so the same commit gives the same binary (and digest) on another machine.
    HOMELAB_OPS_GIT_COMMIT=$commit \
      CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$root=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
      cargo build --release --locked --target "$target" --target-dir target/static \
      "${pkgs[@]}" --bins
  }
  echo "image.sh: static build ($target, target/static, commit $commit)" >&2
  static_build
fi
[ -n "$binary" ] || binary=$static_dir/homelab-ops
[ -x "$binary" ] || { echo "image.sh: $binary not built: run bash scripts/image.sh without --no-build" >&2; exit 2; }
if ! file_out=$(LC_ALL=C od -An -c -N4 "$binary" | tr -d ' \n') || [ "$file_out" != '177ELF' ]; then
  echo "image.sh: $binary is not an ELF executable; pass the static multicall binary" >&2
  exit 2
fi

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
mkdir -p target
work=$(mktemp -d "$root/target/.image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Root filesystem: the binary once, hard-linked under the six names (the tar stores links, so
# the size counts once); CA bundle; passwd/group naming uid 65532; an empty /tmp for a mount.
stage=$work/rootfs
install -d -m 0755 "$stage/usr/local/bin" "$stage/etc/ssl/certs"
install -d -m 1777 "$stage/tmp"
install -m 0755 "$binary" "$stage/usr/local/bin/homelab-ops"
for t in "${tools[@]}"; do ln "$stage/usr/local/bin/homelab-ops" "$stage/usr/local/bin/$t"; done
install -m 0644 "$cabundle" "$stage/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$stage/etc/group"
chmod 0644 "$stage/etc/passwd" "$stage/etc/group"
find "$stage" -type d -exec chmod u+rwx,go+rx {} +
(cd "$stage" && SOURCE_DATE_EPOCH=$epoch tar --sort=name --format=gnu --mtime="@$epoch" \
  --owner=0 --group=0 --numeric-owner -cf "$work/layer.tar" etc tmp usr)
size=$(stat -c %s "$work/layer.tar")
limit=$((16 * 1024 * 1024))
if ((size > limit)); then
  echo "image.sh: image is $size bytes uncompressed, over the 16 MiB budget; shrink the multicall binary (opt-level, features)" >&2
  exit 1
fi

assemble() { # dir → archive path; prints the manifest digest
  local d=$1 lay=$1/oci img
  img=$lay:$version
  export SOURCE_DATE_EPOCH=$epoch
  umoci init --layout "$lay" >&2
  umoci new --image "$img" >&2
  umoci raw add-layer --image "$img" --history.created "$created" \
    --history.created_by "scripts/image.sh (homelab-ops $version, commit $commit)" "$work/layer.tar" >&2
  umoci config --image "$img" --no-history --created "$created" --author homelab-ops \
    --architecture amd64 --os linux --config.user 65532:65532 --config.workingdir / \
    --config.env PATH=/usr/local/bin --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.label "org.opencontainers.image.title=homelab-ops" \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.revision=$commit" \
    --config.label "org.opencontainers.image.licenses=MIT" \
    --config.label "org.opencontainers.image.source=https://github.com/viktorbarzin/homelab-ops" >&2
  umoci gc --layout "$lay" >&2
  (cd "$lay" && tar --sort=name --format=gnu --mtime="@$epoch" --owner=0 --group=0 \
    --numeric-owner -cf "$d/homelab-ops.oci.tar" oci-layout index.json blobs)
  jq -r '.manifests[0].digest' "$lay/index.json"
}
mkdir "$work/a" "$work/b"
digest=$(assemble "$work/a")
digest_b=$(assemble "$work/b")
if [ "$digest" != "$digest_b" ] || ! cmp -s "$work/a/homelab-ops.oci.tar" "$work/b/homelab-ops.oci.tar"; then
  echo "image.sh: two assemblies from the same binary differ ($digest vs $digest_b): the build is not reproducible; check tar/umoci versions" >&2
  exit 1
fi
# skopeo reads the archive back as a consumer would (and as `skopeo copy` will on push).
skopeo inspect --raw "oci-archive:$work/a/homelab-ops.oci.tar:$version" >/dev/null

mkdir -p "$out"
mv -f "$work/a/homelab-ops.oci.tar" "$out/homelab-ops.oci.tar"
echo "image: $ref"
echo "digest: $digest"
echo "archive: $out/homelab-ops.oci.tar"
echo "size: $size bytes uncompressed ($(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }') MiB)"
