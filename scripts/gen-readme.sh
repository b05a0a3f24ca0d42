#!/usr/bin/env bash
# Regenerate the README's per-binary reference blocks from each binary's own clap definition
# (`<binary> --help`), so env vars, defaults and exit codes in the README cannot drift.
# The workspace test `readme_reference_matches_help` fails when a block is stale.
#   scripts/gen-readme.sh [BIN_DIR]   (default target/debug; builds the binaries if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
bindir=${1:-target/debug}
[ "$bindir" = target/debug ] && cargo build --workspace --bins --locked -q
python3 - "$bindir" <<'PY'
import pathlib, re, subprocess, sys
bindir = pathlib.Path(sys.argv[1])
readme = pathlib.Path("README.md")
text = readme.read_text()
for main in sorted(pathlib.Path("crates").glob("*/src/main.rs")):
    b = main.parent.parent.name
    help_text = subprocess.run([str(bindir / b), "--help"], capture_output=True, text=True, check=True).stdout
    block = f"<!-- BEGIN help: {b} -->\n```text\n{help_text}```\n<!-- END help: {b} -->"
    pat = re.compile(rf"<!-- BEGIN help: {re.escape(b)} -->.*?<!-- END help: {re.escape(b)} -->", re.S)
    if pat.search(text):
        text = pat.sub(lambda _m: block, text)
    else:
        marker = "<!-- reference blocks end -->"
        if marker not in text:
            sys.exit(f"README.md has no '{marker}' marker to insert {b}'s block before")
        text = text.replace(marker, f"### `{b}`\n\n{block}\n\n{marker}")
# systemd-analyze security exposure of every service (offline: reads the unit file only), in
# the mode each really runs in: its "# Manager:" line (system, user, or both); a template is
# analysed as an instance; user mode needs a runtime dir.
import os, shutil, tempfile
rows = ["| unit | manager | exposure (systemd-analyze security, lower is better) |", "|---|---|---|"]
rt = tempfile.mkdtemp()
for unit in sorted(pathlib.Path("systemd").glob("*.service")):
    mline = re.search(r"^# Manager: (.+)$", unit.read_text(), re.M)
    staged = pathlib.Path(rt) / unit.name.replace("@.", "@x.")
    shutil.copy(unit, staged)
    for mgr in (mline.group(1).split() if mline else ["system"]):
        args = ["systemd-analyze", "security", "--offline=true", "--no-pager"] + (["--user"] if mgr == "user" else []) + [str(staged)]
        out = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, XDG_RUNTIME_DIR=rt)).stdout
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", out)
        rows.append(f"| `{unit.name}` | {mgr} | {m.group(1)} {m.group(2)} |" if m else f"| `{unit.name}` | {mgr} | ? |")
shutil.rmtree(rt)
block = "<!-- BEGIN systemd-security -->\n" + "\n".join(rows) + "\n<!-- END systemd-security -->"
pat = re.compile(r"<!-- BEGIN systemd-security -->.*?<!-- END systemd-security -->", re.S)
if pat.search(text):
    text = pat.sub(lambda _m: block, text)
readme.write_text(text)
PY
echo "README reference blocks regenerated from $bindir" >&2
