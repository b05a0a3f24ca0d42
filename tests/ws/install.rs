use crate::{bin_dir, binaries, root};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `scripts/install.sh` with `HOME=home` and a PATH whose first entry is `fakebin`.
fn install(home: &Path, fakebin: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/install.sh"))
        .args(args)
        .env("HOME", home)
        .env(
            "PATH",
            format!("{}:{}", fakebin.display(), std::env::var("PATH").unwrap()),
        )
        .current_dir(root())
        .output()
        .unwrap()
}

fn ok(o: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "install.sh {what}: {err}");
    err
}

/// A fake `npm` whose `prefix -g` prints `out` and exits `code`.
fn fake_npm(dir: &Path, out: &str, code: i32) {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("npm");
    std::fs::write(&p, format!("#!/bin/sh\necho '{out}'\nexit {code}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Unit text with its drop-ins applied in order (systemd's rule: an empty assignment of a
/// list setting resets it; later assignments append). Returns every `Key=value` in order.
pub fn merged(unit: &Path) -> Vec<(String, String)> {
    let mut files = vec![unit.to_path_buf()];
    let d = PathBuf::from(format!("{}.d", unit.display()));
    if let Ok(rd) = std::fs::read_dir(&d) {
        let mut confs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        confs.sort();
        files.extend(confs);
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for f in files {
        for l in std::fs::read_to_string(f).unwrap().lines() {
            let l = l.trim();
            if l.starts_with('#') || l.starts_with('[') {
                continue;
            }
            if let Some((k, v)) = l.split_once('=') {
                if v.is_empty() {
                    out.retain(|(x, _)| x != k);
                } else {
                    out.push((k.to_string(), v.to_string()));
                }
            }
        }
    }
    out
}

pub fn values(m: &[(String, String)], key: &str) -> Vec<String> {
    m.iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// `scripts/install.sh` puts every binary and unit under DESTDIR/PREFIX and `--uninstall`
/// takes them away again.
#[test]
fn install_into_a_temporary_root_and_uninstall() {
    let bins = binaries();
    for b in &bins {
        crate::bin(b);
    }
    let dest = tempfile::tempdir().unwrap();
    let home = dest.path().join("home");
    let fakebin = dest.path().join("fakebin");
    fake_npm(&fakebin, "/usr", 0);
    let run = |extra: &[&str]| {
        let mut a = vec!["--prefix", "/opt/homelab", "--destdir"];
        a.push(dest.path().to_str().unwrap());
        a.extend(extra);
        ok(&install(&home, &fakebin, &a), &format!("{extra:?}"));
    };
    run(&["--from", bin_dir().to_str().unwrap()]);
    let prefix = dest.path().join("opt/homelab");
    for b in &bins {
        let p = prefix.join("bin").join(b);
        let mode = std::fs::metadata(&p)
            .unwrap_or_else(|_| panic!("{} missing", p.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{}", p.display());
    }
    let mut units = 0;
    for e in std::fs::read_dir(root().join("systemd")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".service") || name.ends_with(".timer")) {
            continue;
        }
        let sys = prefix.join("lib/systemd/system").join(&name);
        let user = prefix.join("lib/systemd/user").join(&name);
        let installed = if sys.is_file() { sys } else { user };
        let text =
            std::fs::read_to_string(&installed).unwrap_or_else(|_| panic!("{name} not installed"));
        assert!(
            !text.contains("/usr/local/bin/") && !text.contains("/usr/local/lib/"),
            "{name}: ExecStart not rewritten to the prefix"
        );
        units += 1;
    }
    // The user units and their OnFailure= reporter go to the user manager's directory.
    for n in [
        "vault-token-renew.service",
        "vault-token-renew.timer",
        "homelab-unit-failure@.service",
    ] {
        assert!(prefix.join("lib/systemd/user").join(n).is_file(), "{n}");
    }
    assert!(prefix
        .join("lib/systemd/system/homelab-unit-failure@.service")
        .is_file());
    assert!(prefix
        .join("lib/homelab-ops/homelab-unit-failure")
        .is_file());
    run(&["--uninstall"]);
    for b in &bins {
        assert!(
            !prefix.join("bin").join(b).exists(),
            "{b} left after uninstall"
        );
    }
    let left: usize = ["lib/systemd/system", "lib/systemd/user"]
        .iter()
        .map(|d| {
            std::fs::read_dir(prefix.join(d))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(left, 0, "units left after uninstall ({units} installed)");
    assert!(!prefix.join("lib/homelab-ops").exists());
}

/// Issue 15 item 1: the installed t3-migrate-idle unit plus its drop-ins can write the npm
/// global prefix (`<prefix>/lib/node_modules`, `<prefix>/bin`) that a rollback rewrites;
/// `--npm-prefix` wins, `npm prefix -g` is the default, `/usr` with a note without npm, and a
/// failing `npm prefix -g` is one line, exit 1, nothing installed.
#[test]
fn t3_unit_can_write_the_npm_prefix_a_rollback_rewrites() {
    let from = bin_dir();
    type Case<'a> = (Option<(&'a str, i32)>, &'a [&'a str], &'a str);
    let cases: [Case; 3] = [
        (Some(("/opt/node", 0)), &[], "/opt/node"),
        (
            Some(("/opt/node", 0)),
            &["--npm-prefix", "/srv/npm/"],
            "/srv/npm",
        ),
        (None, &[], "/usr"),
    ];
    for (npm, extra, want) in cases {
        let dest = tempfile::tempdir().unwrap();
        let fakebin = dest.path().join("fakebin");
        std::fs::create_dir_all(&fakebin).unwrap();
        let mut args = vec![
            "--prefix",
            "/usr/local",
            "--destdir",
            dest.path().to_str().unwrap(),
            "--from",
            from.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = match npm {
            Some((out, code)) => {
                fake_npm(&fakebin, out, code);
                install(&dest.path().join("home"), &fakebin, &args)
            }
            None => {
                // No npm anywhere on PATH: only the fakes dir and the basics install.sh needs.
                let mut c = Command::new("/bin/bash");
                c.arg(root().join("scripts/install.sh"))
                    .args(&args)
                    .env("HOME", dest.path().join("home"))
                    .env("PATH", "/usr/bin:/bin")
                    .current_dir(root());
                if Path::new("/usr/bin/npm").exists() || Path::new("/bin/npm").exists() {
                    // Hide the system npm behind a PATH without it.
                    let tools = dest.path().join("tools");
                    std::fs::create_dir_all(&tools).unwrap();
                    for t in [
                        "install", "sed", "head", "basename", "dirname", "chmod", "cmp", "cp",
                        "rm", "rmdir", "grep", "mv", "sort", "cat", "mktemp", "xargs",
                    ] {
                        let src = Path::new("/usr/bin").join(t);
                        let src = if src.exists() {
                            src
                        } else {
                            Path::new("/bin").join(t)
                        };
                        std::os::unix::fs::symlink(src, tools.join(t)).unwrap();
                    }
                    c.env("PATH", &tools);
                }
                c.output().unwrap()
            }
        };
        let err = ok(&o, &format!("{npm:?} {extra:?}"));
        if npm.is_none() {
            assert!(
                err.contains("note: npm not found; assuming npm prefix /usr"),
                "{err}"
            );
        }
        let unit = dest
            .path()
            .join("usr/local/lib/systemd/system/t3-migrate-idle.service");
        let m = merged(&unit);
        let rw = values(&m, "ReadWritePaths");
        for p in [format!("{want}/lib/node_modules"), format!("{want}/bin")] {
            assert!(rw.contains(&p), "{want}: ReadWritePaths {rw:?} lacks {p}");
        }
        assert_eq!(values(&m, "ProtectSystem"), ["strict"]);
        // A finite start timeout: a hung pass must end.
        let t = values(&m, "TimeoutStartSec");
        assert!(t.len() == 1 && t[0] != "infinity" && t[0] != "0", "{t:?}");
        assert_eq!(values(&m, "OnFailure"), ["homelab-unit-failure@%n.service"]);
    }
    // `npm prefix -g` failing: one line naming the input, exit 1, nothing installed.
    let dest = tempfile::tempdir().unwrap();
    let fakebin = dest.path().join("fakebin");
    fake_npm(&fakebin, "npm ERR! boom", 7);
    let o = install(
        &dest.path().join("home"),
        &fakebin,
        &[
            "--destdir",
            dest.path().to_str().unwrap(),
            "--from",
            from.to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("install.sh: npm prefix -g failed (exit 7): pass --npm-prefix DIR"),
        "{err}"
    );
    assert!(
        !dest.path().join("usr").exists(),
        "installed despite the failure"
    );
    // A relative or spaced prefix is refused the same way.
    let o = install(
        &dest.path().join("home"),
        &fakebin,
        &[
            "--destdir",
            dest.path().to_str().unwrap(),
            "--from",
            from.to_str().unwrap(),
            "--npm-prefix",
            "opt/x y",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("--npm-prefix opt/x y: must be an absolute path"));
}

/// Issue 15 item 8: `--user` installs into ~/.local/bin and ~/.config/systemd/user (the
/// runbook's live paths), replacing the bash units there (backed up, restored by
/// `--user --uninstall`); a system install warns when those would shadow its user units.
#[test]
fn user_install_replaces_the_bash_units_and_uninstall_restores_them() {
    let from = bin_dir();
    crate::bin("vault-token-renew");
    let dest = tempfile::tempdir().unwrap();
    let home = dest.path().join("home");
    let fakebin = dest.path().join("fakebin");
    fake_npm(&fakebin, "/usr", 0);
    let units = home.join(".config/systemd/user");
    let lbin = home.join(".local/bin");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::create_dir_all(&lbin).unwrap();
    let bash_unit = "[Service]\nExecStart=%h/.local/bin/vault-token-renew\n";
    std::fs::write(units.join("vault-token-renew.service"), bash_unit).unwrap();
    std::fs::write(
        units.join("vault-token-renew.timer"),
        "[Timer]\nOnCalendar=daily\n",
    )
    .unwrap();
    std::fs::write(lbin.join("vault-token-renew"), "#!/bin/bash\necho bash\n").unwrap();
    // System install with those present: a warning naming the shadowing file.
    let sysroot = dest.path().join("root");
    let o = install(
        &home,
        &fakebin,
        &[
            "--destdir",
            sysroot.to_str().unwrap(),
            "--from",
            from.to_str().unwrap(),
        ],
    );
    let err = ok(&o, "system");
    assert!(
        err.contains(&format!(
            "WARNING: {}/vault-token-renew.service shadows the installed vault-token-renew.service",
            units.display()
        )),
        "{err}"
    );
    // --user: ours in place, the bash files backed up.
    ok(
        &install(
            &home,
            &fakebin,
            &["--user", "--from", from.to_str().unwrap()],
        ),
        "--user",
    );
    let svc = units.join("vault-token-renew.service");
    let m = merged(&svc);
    assert_eq!(values(&m, "ExecStart"), ["%h/.local/bin/vault-token-renew"]);
    assert!(
        values(&m, "After").is_empty() && values(&m, "Wants").is_empty(),
        "{m:?}"
    );
    assert!(units.join("homelab-unit-failure@.service").is_file());
    assert!(home
        .join(".local/lib/homelab-ops/homelab-unit-failure")
        .is_file());
    assert_eq!(
        std::fs::read(lbin.join("vault-token-renew")).unwrap(),
        std::fs::read(from.join("vault-token-renew")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(units.join("vault-token-renew.service.homelab-ops-backup"))
            .unwrap(),
        bash_unit
    );
    // A second --user run keeps the first backup (the bash original), not our own copy.
    ok(
        &install(
            &home,
            &fakebin,
            &["--user", "--from", from.to_str().unwrap()],
        ),
        "--user again",
    );
    assert_eq!(
        std::fs::read_to_string(units.join("vault-token-renew.service.homelab-ops-backup"))
            .unwrap(),
        bash_unit
    );
    // --user --uninstall: the bash originals are back, ours are gone.
    ok(
        &install(&home, &fakebin, &["--user", "--uninstall"]),
        "--user --uninstall",
    );
    assert_eq!(std::fs::read_to_string(&svc).unwrap(), bash_unit);
    assert_eq!(
        std::fs::read_to_string(units.join("vault-token-renew.timer")).unwrap(),
        "[Timer]\nOnCalendar=daily\n"
    );
    assert_eq!(
        std::fs::read_to_string(lbin.join("vault-token-renew")).unwrap(),
        "#!/bin/bash\necho bash\n"
    );
    assert!(!units.join("homelab-unit-failure@.service").exists());
    let left: Vec<_> = std::fs::read_dir(&units)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".homelab-ops-backup"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
