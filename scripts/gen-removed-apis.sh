#!/usr/bin/env bash
# Regenerate crates/compat-gate/data/removed-apis.json from the vendored k8s.io/api
# zz_generated.prerelease-lifecycle.go files (crates/compat-gate/data/k8s-api-lifecycle, tag and
# commit in its SOURCE file; k8s-api-lifecycle-older/<tag>/ holds the packages whose removed
# types were deleted from k8s.io/api since, from the last tag that had them) plus
# removed-apis-extra.json (groups outside k8s.io/api; replacements the files do not tag).
# kubepug generates its database the same way (kubepug#407).
#
#   scripts/gen-removed-apis.sh           write the JSON
#   scripts/gen-removed-apis.sh --check   exit 1 (with a diff) when the JSON is not what the
#                                         vendored files say; the compat-gate test suite runs this
#
# To move to a newer Kubernetes: replace the vendored tree with the new tag's files (same layout),
# update SOURCE, run this script, review the diff, commit.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$here/crates/compat-gate/data"
command -v python3 >/dev/null || {
  echo "gen-removed-apis: python3 missing; install it: apt-get install -y python3" >&2
  exit 2
}
exec python3 - "$data" "$@" <<'PY'
import difflib, json, os, re, sys

data, args = sys.argv[1], sys.argv[2:]
check = args == ["--check"]
if args not in ([], ["--check"]):
    sys.exit("usage: gen-removed-apis.sh [--check]")
tree = os.path.join(data, "k8s-api-lifecycle")
source = dict(
    (k.strip(), v.strip())
    for k, v in (l.split(":", 1) for l in open(os.path.join(tree, "SOURCE")) if ":" in l)
)
tag, commit = source["tag"], source["commit"]

# Types with lifecycle methods that are not listable resources (subresource bodies, review
# envelopes, discovery documents).
NOT_RESOURCES = {"DeploymentRollback", "Scale", "Eviction", "AdmissionReview", "APIGroupDiscovery"}
# apimachinery pkg/api/meta/restmapper.go UnsafeGuessKindToResource, plus its one irregular.
IRREGULAR = {"Endpoints": "endpoints"}

def plural(kind):
    if kind in IRREGULAR:
        return IRREGULAR[kind]
    k = kind.lower()
    if k.endswith("s"):
        return k + "es"
    if k.endswith("y"):
        return k[:-1] + "ies"
    return k + "s"

def methods(text, name, ret):
    return {
        m.group(1): m.group(2)
        for m in re.finditer(
            r"func \(in \*(\w+)\) " + name + r"\(\) " + ret + r" \{\s*return ([^\n]+)\n", text
        )
    }

def read_tree(tree):
    out = []
    for pkg in sorted(os.listdir(tree)):
        pdir = os.path.join(tree, pkg)
        if not os.path.isdir(pdir):
            continue
        for ver in sorted(os.listdir(pdir)):
            vdir = os.path.join(pdir, ver)
            reg = open(os.path.join(vdir, "register.go")).read()
            group = re.search(r'const GroupName = "([^"]*)"', reg).group(1)
            text = open(os.path.join(vdir, "zz_generated.prerelease-lifecycle.go")).read()
            removed = methods(text, "APILifecycleRemoved", r"\(major, minor int\)")
            introduced = methods(text, "APILifecycleIntroduced", r"\(major, minor int\)")
            repl = methods(text, "APILifecycleReplacement", r"schema\.GroupVersionKind")
            for kind, rm in sorted(removed.items()):
                if kind.endswith("List") or kind in NOT_RESOURCES:
                    continue
                major, minor = (int(x) for x in rm.split(","))
                m = re.search(r'Group: "([^"]*)", Version: "([^"]*)"', repl.get(kind, ""))
                replacement = ""
                if m:
                    replacement = m.group(2) if m.group(1) == "" else m.group(1) + "/" + m.group(2)
                entry = {
                    "group": group,
                    "version": ver,
                    "kind": kind,
                    "resource": plural(kind),
                    "removed_in": "%d.%d" % (major, minor),
                    "replacement": replacement,
                }
                intro = introduced.get(kind)
                # KEP-3136: beta APIs introduced from 1.24 on are off by default (kubernetes
                # pkg/controlplane DefaultAPIResourceConfigSource, betaAPIGroupVersionsDisabledByDefault).
                if intro and tuple(int(x) for x in intro.split(",")) >= (1, 24):
                    entry["off_by_default"] = True
                out.append(entry)
    return out

def ident(e):
    return (e["group"], e["version"], e["kind"])

removals = read_tree(tree)
seen = {ident(e) for e in removals}
older = os.path.join(data, "k8s-api-lifecycle-older")
older_tags = sorted(os.listdir(older), key=lambda t: [int(x) for x in t[1:].split(".")], reverse=True)
for t in older_tags:
    for e in read_tree(os.path.join(older, t)):
        if ident(e) not in seen:
            seen.add(ident(e))
            removals.append(e)
extra = json.load(open(os.path.join(data, "removed-apis-extra.json")))
for e in extra["removals"]:
    removals.append({k: v for k, v in e.items() if not k.startswith("_")})
# Replacements the lifecycle files do not tag (no +k8s:prerelease-lifecycle-gen:replacement)
# but the migration guide names; only ever fills an empty one.
for f in extra["replacements"]:
    hits = [e for e in removals if ident(e) == (f["group"], f["version"], f["kind"])]
    if len(hits) != 1:
        sys.exit("removed-apis-extra.json: replacement for %s/%s %s matches %d entries" % (f["group"], f["version"], f["kind"], len(hits)))
    if hits[0]["replacement"]:
        sys.exit("removed-apis-extra.json: %s/%s %s already has replacement %s in the lifecycle files; drop the override" % (f["group"], f["version"], f["kind"], hits[0]["replacement"]))
    hits[0]["replacement"] = f["replacement"]
# KEP-3136 off-by-default betas, minus the resources the apiserver keeps on
# (legacyBetaEnabledByDefaultResources).
for f in extra["legacy_on_by_default"]:
    for e in removals:
        if ident(e) == (f["group"], f["version"], f["kind"]):
            e.pop("off_by_default", None)

def key(e):
    return (tuple(int(x) for x in e["removed_in"].split(".")), e["group"], e["version"], e["kind"])

removals.sort(key=key)
doc = {
    "source": "k8s.io/api %s (%s) zz_generated.prerelease-lifecycle.go (+ %s for types deleted since), generated by scripts/gen-removed-apis.sh" % (tag, commit, ", ".join(older_tags)),
    "checked": source["vendored"],
    "covers_through": "1." + tag.split(".")[1],
    "_note": "GENERATED - do not edit; edit removed-apis-extra.json or re-vendor k8s-api-lifecycle and run scripts/gen-removed-apis.sh. Removal releases are k8s.io/api's prerelease-lifecycle values (the deprecation policy's latest removal; the API may go earlier).",
    "removals": removals,
}
out = json.dumps(doc, indent=1) + "\n"
path = os.path.join(data, "removed-apis.json")
if check:
    cur = open(path).read()
    if cur != out:
        sys.stdout.writelines(difflib.unified_diff(cur.splitlines(True), out.splitlines(True), path, "generated"))
        sys.exit("removed-apis.json differs from what scripts/gen-removed-apis.sh generates; run it and commit the result")
    print("removed-apis.json matches the vendored lifecycle files (%s)" % tag)
else:
    open(path, "w").write(out)
PY
