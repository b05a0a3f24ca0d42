use crate::{bin, root};
use std::path::PathBuf;
use std::process::Command;

/// Every unit and timer in systemd/ passes `systemd-analyze verify` with its ExecStart
/// pointing at the freshly built binary (so a wrong path or bad directive fails).
#[test]
fn systemd_units_verify() {
    let sa = testkit::require_bin("systemd-analyze", &[], "apt-get install -y systemd");
    let src = root().join("systemd");
    let mut units: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("service" | "timer")
            )
        })
        .collect();
    units.sort();
    let tmp = tempfile::tempdir().unwrap();
    for u in &units {
        let mut text = std::fs::read_to_string(u).unwrap();
        for b in crate::binaries() {
            let installed = format!("/usr/local/bin/{b}");
            if text.contains(&installed) {
                text = text.replace(&installed, bin(&b).to_str().unwrap());
            }
        }
        std::fs::write(tmp.path().join(u.file_name().unwrap()), text).unwrap();
    }
    for u in &units {
        let staged = tmp.path().join(u.file_name().unwrap());
        let out = Command::new(&sa)
            .arg("verify")
            .arg("--man=no")
            .arg(&staged)
            .env("SYSTEMD_LOG_LEVEL", "notice")
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // Outside a booted systemd there is no bus; that line is environmental, not a finding.
        let findings: Vec<&str> = err
            .lines()
            .filter(|l| {
                !l.trim().is_empty()
                    && !l.contains("Failed to connect to bus")
                    && !l.contains("No such file or directory\" (bus)")
            })
            .collect();
        assert!(
            findings.is_empty(),
            "{}:\n{}",
            u.display(),
            findings.join("\n")
        );
        assert!(
            out.status.success(),
            "{}: exit {:?}\n{err}",
            u.display(),
            out.status.code()
        );
    }
}
