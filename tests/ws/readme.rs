use crate::{bin, binaries, root};

/// The README's reference block of every binary is its current `--help` (regenerate with
/// `scripts/gen-readme.sh`), so documented env vars, defaults and exit codes cannot drift.
#[test]
fn readme_reference_matches_help() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for b in binaries() {
        let out = std::process::Command::new(bin(&b))
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{b} --help exited {:?}",
            out.status.code()
        );
        let help = String::from_utf8(out.stdout).unwrap();
        let block = format!("<!-- BEGIN help: {b} -->\n```text\n{help}```\n<!-- END help: {b} -->");
        assert!(
            readme.contains(&block),
            "README reference for {b} is missing or stale: run scripts/gen-readme.sh"
        );
        for needle in ["[env: ", "xit"] {
            assert!(
                help.contains(needle),
                "{b} --help lacks {needle:?} (env twins and exit codes must be documented)"
            );
        }
    }
}
