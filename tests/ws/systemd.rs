use crate::ws::install::{merged, values};
use crate::{bin, root};
use std::path::{Path, PathBuf};
use std::process::Command;

fn unit_files(ext: &[&str]) -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(root().join("systemd"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ext.contains(&e))
        })
        .collect();
    units.sort();
    units
}

/// The managers a unit runs under, from its `# Manager:` line (system when absent).
fn managers(unit: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(unit).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# Manager: "))
        .unwrap_or("system")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A unit's text with ExecStart= pointing at what was built/shipped here.
fn staged_text(u: &Path) -> String {
    let mut text = std::fs::read_to_string(u).unwrap();
    for b in crate::binaries() {
        let installed = format!("/usr/local/bin/{b}");
        if text.contains(&installed) {
            text = text.replace(&installed, bin(&b).to_str().unwrap());
        }
    }
    text.replace(
        "/usr/local/lib/homelab-ops/homelab-unit-failure",
        root()
            .join("systemd/homelab-unit-failure.sh")
            .to_str()
            .unwrap(),
    )
}

/// `systemd-analyze verify` findings, minus the environmental no-bus lines.
fn verify(sa: &Path, dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> (bool, Vec<String>) {
    let mut c = Command::new(sa);
    c.arg("verify")
        .arg("--man=no")
        .args(args)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let findings = err
        .lines()
        .filter(|l| {
            !l.trim().is_empty()
                && !l.contains("Failed to connect to bus")
                && !l.contains("No such file or directory\" (bus)")
        })
        .map(str::to_string)
        .collect();
    (out.status.success(), findings)
}

/// Every unit and timer in systemd/ passes `systemd-analyze verify` with its ExecStart
/// pointing at the freshly built binary (so a wrong path or bad directive fails).
#[test]
fn systemd_units_verify() {
    let sa = testkit::require_bin("systemd-analyze", &[], "apt-get install -y systemd");
    let units = unit_files(&["service", "timer"]);
    let tmp = tempfile::tempdir().unwrap();
    for u in &units {
        std::fs::write(tmp.path().join(u.file_name().unwrap()), staged_text(u)).unwrap();
    }
    for u in &units {
        let staged = tmp.path().join(u.file_name().unwrap());
        let (ok, findings) = verify(&sa, tmp.path(), &[staged.to_str().unwrap()], &[]);
        assert!(
            findings.is_empty(),
            "{}:\n{}",
            u.display(),
            findings.join("\n")
        );
        assert!(ok, "{}", u.display());
    }
}

/// Issue 15 items 1 and 9 on the merged units as installed (unit + drop-ins): the t3 unit with
/// its npm-prefix drop-in verifies; vault-token-renew retries hourly but alerts on the start
/// limit; both name the OnFailure= reporter; the user unit has no network-online.target.
#[test]
fn merged_units_verify_and_carry_the_failure_policy() {
    let sa = testkit::require_bin("systemd-analyze", &[], "apt-get install -y systemd");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("units");
    std::fs::create_dir_all(dir.join("t3-migrate-idle.service.d")).unwrap();
    for u in unit_files(&["service", "timer"]) {
        std::fs::write(dir.join(u.file_name().unwrap()), staged_text(&u)).unwrap();
    }
    // The drop-in scripts/install.sh writes (checked against install.sh's output in
    // tests/ws/install.rs); here with existing directories so verify resolves them.
    let npm = tmp.path().join("npm");
    for d in ["lib/node_modules", "bin"] {
        std::fs::create_dir_all(npm.join(d)).unwrap();
    }
    std::fs::write(
        dir.join("t3-migrate-idle.service.d/npm-prefix.conf"),
        format!(
            "[Service]\nReadWritePaths={0}/lib/node_modules {0}/bin\n",
            npm.display()
        ),
    )
    .unwrap();
    // A trailing ':' appends systemd's own search path (for sysinit.target and friends).
    let search = PathBuf::from(format!("{}:", dir.display()));
    for name in ["t3-migrate-idle.service", "vault-token-renew.service"] {
        let (ok, findings) = verify(&sa, tmp.path(), &[name], &[("SYSTEMD_UNIT_PATH", &search)]);
        assert!(findings.is_empty(), "{name}:\n{}", findings.join("\n"));
        assert!(ok, "{name}");
    }
    let t3 = merged(&dir.join("t3-migrate-idle.service"));
    assert!(values(&t3, "ReadWritePaths").contains(&format!("{}/lib/node_modules", npm.display())));
    assert_eq!(
        values(&t3, "OnFailure"),
        ["homelab-unit-failure@%n.service"]
    );
    assert_eq!(values(&t3, "TimeoutStartSec"), ["15min"]);
    assert!(
        values(&t3, "Restart").is_empty(),
        "t3 never restarts on doubt"
    );
    let vtr = merged(&dir.join("vault-token-renew.service"));
    for (k, v) in [
        ("Restart", "on-failure"),
        ("RestartSec", "1h"),
        ("StartLimitIntervalSec", "1d"),
        ("StartLimitBurst", "3"),
        ("OnFailure", "homelab-unit-failure@%n.service"),
    ] {
        assert_eq!(values(&vtr, k), [v], "vault-token-renew.service {k}");
    }
    // Three attempts a day fit inside the limit window: 3 × RestartSec < 1 d, so the third
    // failure of a persistent problem hits the limit (and fires OnFailure=) the same day.
    for k in ["Wants", "After", "Requires"] {
        assert!(
            !values(&vtr, k).iter().any(|v| v == "network-online.target"),
            "user unit names network-online.target in {k}"
        );
    }
    assert_eq!(
        managers(&root().join("systemd/vault-token-renew.service")),
        ["user"]
    );
    assert_eq!(
        managers(&root().join("systemd/homelab-unit-failure@.service")),
        ["system", "user"]
    );
}

/// Item 9: the OnFailure= reporter logs one line and pushes the failure metric to a real
/// Pushgateway; without a URL it still logs.
#[test]
fn failure_reporter_logs_one_line_and_pushes_the_metric() {
    let pg = testkit::Pushgateway::start();
    let script = root().join("systemd/homelab-unit-failure.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("vault-token-renew.service")
        .env("PUSHGATEWAY_URL", pg.url())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("UNIT FAILED: vault-token-renew.service on "),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("; failure metric pushed"),
        "{text}"
    );
    let m = pg.metrics_text();
    let line = m
        .lines()
        .find(|l| l.starts_with("homelab_unit_failed{"))
        .unwrap_or_else(|| panic!("no failure metric in {m}"));
    assert!(
        line.contains("unit=\"vault-token-renew.service\""),
        "{line}"
    );
    assert!(line.contains("job=\"homelab_unit_failure\""), "{line}");
    assert!(line.ends_with(" 1"), "{line}");
    let out = Command::new("bash")
        .arg(&script)
        .arg("t3-migrate-idle.service")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("metric not pushed"), "{text}");
    // A value that is not a unit name is a usage error, nothing pushed.
    let out = Command::new("bash")
        .arg(&script)
        .arg("x y;rm")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The exposure score `systemd-analyze security` gives each service, in the mode it really
/// runs in (`--user` for user units; both rows for a unit installed for both managers), is
/// the one the README records (regenerate with `scripts/gen-readme.sh`).
#[test]
fn systemd_security_exposure_is_recorded_in_readme() {
    let sa = testkit::require_bin("systemd-analyze", &[], "apt-get install -y systemd");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let rt = tempfile::tempdir().unwrap();
    for s in unit_files(&["service"]) {
        let name = s.file_name().unwrap().to_string_lossy().into_owned();
        // A template is analysed as an instance of itself.
        let staged = rt.path().join(name.replace("@.", "@x."));
        std::fs::copy(&s, &staged).unwrap();
        for mgr in managers(&s) {
            let mut c = Command::new(&sa);
            c.args(["security", "--offline=true", "--no-pager"]);
            if mgr == "user" {
                c.arg("--user").env("XDG_RUNTIME_DIR", rt.path());
            }
            let out = c.arg(&staged).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find(|l| l.contains("Overall exposure level for"))
                .unwrap_or_else(|| panic!("{name} ({mgr}): no exposure score in:\n{text}"));
            let score: Vec<&str> = line
                .rsplit(": ")
                .next()
                .unwrap()
                .split_whitespace()
                .take(2)
                .collect();
            let row = format!("| `{name}` | {mgr} | {} {} |", score[0], score[1]);
            assert!(
                readme.contains(&row),
                "README lacks `{row}`: run scripts/gen-readme.sh"
            );
        }
    }
}
