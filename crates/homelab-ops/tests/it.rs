//! The docs generator as the release and install scripts run it. Being an integration test
//! also makes `cargo test --workspace` build `homelab-ops-docs` into target/<profile>/, which
//! the workspace install/release tests hand to scripts/install.sh via `--from`.
use std::process::Command;

const TOOLS: [&str; 6] = [
    "vault-token-renew",
    "t3-migrate-idle",
    "goldmane-edge-aggregator",
    "edges-digest",
    "compat-gate",
    "nightly-report",
];

#[test]
fn man_pages_and_completions_name_every_tool() {
    let bin = env!("CARGO_BIN_EXE_homelab-ops-docs");
    let dir = tempfile::tempdir().unwrap();
    for (what, sub) in [("man", "man"), ("completions", "completions")] {
        let o = Command::new(bin)
            .arg(what)
            .arg(dir.path().join(sub))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for t in TOOLS {
        let man = std::fs::read_to_string(dir.path().join(format!("man/{t}.1"))).unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH"),
            "{t}.1: {man:.80}"
        );
        assert!(man.contains(t), "{t}.1 does not name the tool");
        for f in [
            format!("completions/bash/{t}"),
            format!("completions/zsh/_{t}"),
            format!("completions/fish/{t}.fish"),
        ] {
            let text = std::fs::read_to_string(dir.path().join(&f)).unwrap();
            assert!(text.contains(t), "{f} does not name {t}");
        }
    }
}
