//! Debian `shellcheck` at its default severity over every script in scripts/ (with demo.d and
//! bench.d) and .ci/run.

use crate::root;

#[test]
fn scripts_pass_shellcheck() {
    let shellcheck = crate::ws::tools::shellcheck();
    let mut files = vec![root().join(".ci/run")];
    for dir in ["scripts", "scripts/demo.d", "scripts/bench.d"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            let p = e.path();
            if p.is_file() && p.extension().is_some_and(|x| x == "sh") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "{files:?}");
    let out = std::process::Command::new(&shellcheck)
        .args(["--format=gcc"])
        .args(&files)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck found problems (fix them; sourced files start with `# shellcheck shell=bash`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
