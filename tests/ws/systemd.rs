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

/// The exposure score `systemd-analyze security` gives each service is the one the README
/// records (regenerate with `scripts/gen-readme.sh`), so hardening regressions are visible.
#[test]
fn systemd_security_exposure_is_recorded_in_readme() {
    let sa = testkit::require_bin("systemd-analyze", &[], "apt-get install -y systemd");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut services: Vec<PathBuf> = std::fs::read_dir(root().join("systemd"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    services.sort();
    for s in services {
        let out = Command::new(&sa)
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&s)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let name = s.file_name().unwrap().to_string_lossy().into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("Overall exposure level for"))
            .unwrap_or_else(|| panic!("{name}: no exposure score in:\n{text}"));
        let score: Vec<&str> = line
            .rsplit(": ")
            .next()
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect();
        let row = format!("| `{name}` | {} {} |", score[0], score[1]);
        assert!(
            readme.contains(&row),
            "README lacks `{row}`: run scripts/gen-readme.sh"
        );
    }
}
