use crate::root;

/// The README's Quick start has exactly two commands and CI runs the second verbatim.
#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let qs = readme
        .split("## Quick start")
        .nth(1)
        .expect("README has a Quick start")
        .split("\n## ")
        .next()
        .unwrap();
    let cmds: Vec<&str> = qs
        .split("```")
        .skip(1)
        .step_by(2)
        .flat_map(|b| b.lines().skip(1))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(cmds.len(), 2, "quick start commands: {cmds:?}");
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.contains(cmds[1]), ".ci/run must call `{}`", cmds[1]);
    assert!(
        cmds[0].contains("scripts/demo.sh"),
        "first command runs the demo: {}",
        cmds[0]
    );
}

/// Every script is valid bash (syntax check) and executable.
#[test]
fn scripts_parse() {
    let mut n = 0;
    for dir in ["scripts", "scripts/demo.d", "scripts/bench.d", ".ci"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            let p = e.path();
            let is_script = p.extension().is_some_and(|x| x == "sh")
                || p.file_name().is_some_and(|f| f == "run");
            if !is_script {
                continue;
            }
            let out = std::process::Command::new("bash")
                .arg("-n")
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 6, "found only {n} scripts");
}
