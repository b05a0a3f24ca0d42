//! Stamps the git commit into `homelab_core::build_info` once for all six binaries.
//!
//! Why a build script with narrow `rerun-if-changed` lines: the commit must be right in every
//! build, but rerunning on every source edit would rebuild homelab-core and all six dependants
//! after each keystroke. It reruns only when HEAD moves (a commit, a checkout) or the index
//! changes (`git add`, which is also when `-dirty` flips for most edits). Release scripts pass
//! the exact value in `HOMELAB_OPS_GIT_COMMIT` (computed fresh), so a release is never stale.
//! From a tarball without `.git` the commit is `unknown`.
use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    // --no-optional-locks: `git status` must not refresh the index it is watched by, or each
    // build would trigger the next.
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=HOMELAB_OPS_GIT_COMMIT");
    let commit = match std::env::var("HOMELAB_OPS_GIT_COMMIT") {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => from_git().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=HOMELAB_OPS_GIT_COMMIT={commit}");
}

fn from_git() -> Option<String> {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    // Only a checkout of this workspace counts: a tarball unpacked inside some other git tree
    // must not pick up that tree's commit.
    let top = PathBuf::from(git(&here, &["rev-parse", "--show-toplevel"])?);
    if !top.join("crates/homelab-core/Cargo.toml").is_file() {
        return None;
    }
    let abs = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            here.join(p)
        }
    };
    let git_dir = abs(git(&here, &["rev-parse", "--git-dir"])?);
    let common = abs(git(&here, &["rev-parse", "--git-common-dir"])?);
    // Only files that exist: cargo treats a missing watched file as changed on every build.
    let watch = |p: PathBuf| {
        let ok = p.is_file();
        if ok {
            println!("cargo:rerun-if-changed={}", p.display());
        }
        ok
    };
    watch(git_dir.join("HEAD"));
    watch(git_dir.join("index"));
    // The branch tip: its loose ref, else packed-refs (where `git pack-refs` moves it).
    let loose = git(&here, &["symbolic-ref", "-q", "HEAD"]).is_some_and(|r| watch(common.join(r)));
    if !loose {
        watch(common.join("packed-refs"));
    }
    let sha = git(&here, &["rev-parse", "--short=12", "HEAD"])?;
    let dirty = git(&top, &["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    Some(if dirty { format!("{sha}-dirty") } else { sha })
}
