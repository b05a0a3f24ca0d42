//! The built binary end to end: `--help`, config and precondition errors (exit 2, nothing
//! touched), the two copies of every line (stdout + syslog datagram), `--json`, `status`,
//! metrics (textfile and a real Pushgateway), the systemd units.

use super::common::*;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use testkit::{HttpServer, Reply};

pub struct Syslog {
    sock: UnixDatagram,
    pub path: PathBuf,
}

impl Syslog {
    pub fn bind(lab: &Lab) -> Syslog {
        let path = lab.root().join("dev-log");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_nonblocking(true).unwrap();
        Syslog { sock, path }
    }
    pub fn datagrams(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }
}

pub fn cmd(lab: &Lab, syslog: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", lab.fakes.path())
        .args(args)
        .args(lab.args());
    if let Some(s) = syslog {
        c.args(["--syslog-socket", s.to_str().unwrap()]);
    }
    c
}

pub fn run(mut c: Command) -> (i32, String, String) {
    let o: Output = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn help_documents_every_option_env_default_and_exit_code() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let h = String::from_utf8_lossy(&out.stdout);
    for s in [
        "--quiet-seconds",
        "--dry-run",
        "--freeze-file",
        "--state-dir",
        "--backup-dest",
        "--dispatch",
        "--user-map",
        "--backup-timeout",
        "--metrics-textfile",
        "--pushgateway-url",
        "--json",
        "T3_MIGRATE_QUIET_SECONDS",
        "T3_DRY_RUN",
        "T3_FREEZE_FILE",
        "FREEZE_FILE",
        "T3_STATE_DIR",
        "LAST_GOOD_FILE",
        "DEFER_DIR",
        "T3_BACKUP_DEST",
        "BACKUP_DIR",
        "T3_DISPATCH",
        "T3_USER_MAP",
        "T3_BACKUP_TIMEOUT",
        "T3_METRICS_TEXTFILE",
        "T3_PUSHGATEWAY_URL",
        "[default: 900]",
        "[default: /etc/t3-autoupdate.freeze]",
        "[default: /var/lib/t3-autoupdate]",
        "[default: /var/backups/t3-state]",
        "[default: 127.0.0.1:3780]",
        "[default: /etc/ttyd-user-map]",
        "Exit codes:",
        "status",
    ] {
        assert!(h.contains(s), "--help lacks {s:?}:\n{h}");
    }
    assert!(!h.contains("__as-user"));
}

#[test]
fn invalid_config_is_exit_2_and_touches_nothing() {
    let lab = Lab::new();
    let m = lab.marker("gone", "1.0\n", now() - 60);
    lab.systemd(&[("gone", false, None)]);
    for (var, val) in [
        ("T3_MIGRATE_QUIET_SECONDS", "15m"),
        ("T3_BACKUP_TIMEOUT", "0"),
        ("T3_DISPATCH", "localhost"),
        ("DISPATCH", "h:0"),
    ] {
        let mut c = cmd(&lab, None, &[]);
        c.env(var, val);
        let (code, out, err) = run(c);
        assert_eq!(code, 2, "{var}");
        assert_eq!(out, "");
        assert_eq!(
            err,
            format!("t3-migrate-idle: ERROR: invalid {var}={val}\n")
        );
    }
    let (code, _, err) = run(cmd(&lab, None, &["--quiet-seconds", "-5"]));
    assert_eq!(
        (code, err.trim()),
        (2, "t3-migrate-idle: ERROR: invalid --quiet-seconds=-5")
    );
    assert!(m.exists());
    assert!(lab.fakes.calls().is_empty(), "{:?}", lab.fakes.calls());
}

#[test]
fn not_root_is_exit_2_for_pass_and_status() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let m = lab.marker("gone", "1.0\n", now() - 60);
    for args in [&[][..], &["status"][..]] {
        let mut c = cmd(&lab, None, args);
        c.uid(u.uid).gid(u.gid);
        let (code, out, err) = run(c);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}");
        assert_eq!(err, "t3-migrate-idle: ERROR: must run as root\n");
    }
    assert!(m.exists());
    assert!(lab.fakes.calls().is_empty());
}

#[test]
fn every_line_goes_to_stdout_and_syslog() {
    let lab = Lab::new();
    let sl = Syslog::bind(&lab);
    let m = lab.marker("gone", "1.0\n", now() - 60);
    lab.systemd(&[("gone", false, None)]);
    let (code, out, err) = run(cmd(&lab, Some(&sl.path), &[]));
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "t3-migrate-idle: clearing marker for gone: t3-serve@gone.service not active\n\
         t3-migrate-idle: idle-migrate pass complete (migrated=0 skipped=0)\n"
    );
    assert_eq!(
        sl.datagrams(),
        vec![
            "<13>t3-migrate-idle: clearing marker for gone: t3-serve@gone.service not active",
            "<13>t3-migrate-idle: idle-migrate pass complete (migrated=0 skipped=0)",
        ]
    );
    assert!(!m.exists());
    // frozen: M1 on both channels, exit 0
    fs::write(&lab.freeze, "").unwrap();
    let (code, out, _) = run(cmd(&lab, Some(&sl.path), &[]));
    let m1 = format!(
        "FROZEN: {} present \u{2014} not draining deferrals",
        lab.freeze.display()
    );
    assert_eq!((code, out), (0, format!("t3-migrate-idle: {m1}\n")));
    assert_eq!(sl.datagrams(), vec![format!("<13>t3-migrate-idle: {m1}")]);
}

#[test]
fn json_pass_prints_one_document_and_moves_lines_to_stderr() {
    let lab = Lab::new();
    let sl = Syslog::bind(&lab);
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[(None, &ts_ago(7200))], true);
    lab.marker(&u.name, "0.0.36\n", now() - 3600);
    lab.marker("gone", "1.0\n", now() - 60);
    lab.systemd(&[(&u.name, true, Some(now() - 86400)), ("gone", false, None)]);
    let (code, out, err) = run(cmd(&lab, Some(&sl.path), &["--json", "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON document");
    assert_eq!(out.trim().lines().count(), 1);
    assert_eq!(v["result"], "ok");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["dry_run"], true);
    assert_eq!(
        (v["migrated"].as_u64(), v["skipped"].as_u64()),
        (Some(0), Some(0))
    );
    let ms = v["markers"].as_array().unwrap();
    let mine = ms.iter().find(|m| m["user"] == u.name.as_str()).unwrap();
    assert_eq!(mine["action"], "migrate");
    assert_eq!(mine["target"], "0.0.36");
    assert_eq!(mine["gate"]["verdict"], "safe");
    assert_eq!(mine["gate"]["active"], 0);
    assert!(mine["gate"]["idle_seconds"].as_i64().unwrap() >= 7200);
    let gone = ms.iter().find(|m| m["user"] == "gone").unwrap();
    assert_eq!(gone["action"], "clear");
    assert!(err.contains(&format!(
        "t3-migrate-idle: DRY_RUN: would migrate t3-serve@{}.service -> 0.0.36 (idle gate satisfied)\n",
        u.name
    )));
    assert!(err.contains("t3-migrate-idle: idle-migrate pass complete (migrated=0 skipped=0)\n"));
    assert_eq!(sl.datagrams().len(), err.lines().count());
    assert!(lab.defer.join("gone").exists() && lab.defer.join(&u.name).exists());
}

#[test]
fn status_is_read_only_and_reports_what_a_pass_would_do() {
    let lab = Lab::new();
    let sl = Syslog::bind(&lab);
    let idle = TestUser::create(&lab.home);
    let busy = TestUser::create(&lab.home);
    make_db(&lab, &idle, &[(None, &ts_ago(7200))], false);
    make_db(&lab, &busy, &[(Some("turn"), &ts_ago(10))], true);
    let t = now() - 3600;
    lab.marker(&idle.name, "0.0.36\n", t);
    lab.marker(&busy.name, "", t);
    lab.marker("gone", "1.0\n", t);
    lab.marker("Bad Name", "1.0\n", t);
    fs::write(&lab.last_good, "0.0.34\n").unwrap();
    lab.systemd(&[
        (&idle.name, true, Some(t - 10)),
        (&busy.name, true, Some(t - 10)),
        ("gone", false, None),
    ]);
    let before = lab.fakes.calls().len();
    let (code, out, err) = run(cmd(&lab, Some(&sl.path), &["status", "--json"]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["freeze"]["present"], false);
    assert_eq!(v["installed_version"], "0.0.35");
    assert_eq!(v["last_good"], "0.0.34");
    let find = |n: &str| {
        v["markers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user"] == n)
            .unwrap()
            .clone()
    };
    let i = find(&idle.name);
    assert_eq!(
        (i["action"].as_str(), i["target"].as_str()),
        (Some("migrate"), Some("0.0.36"))
    );
    assert_eq!(i["unit_active"], true);
    assert!(
        i["unit_started"].as_str().unwrap().ends_with('Z')
            || i["unit_started"].as_str().unwrap().contains('+')
    );
    assert!((3590..3700).contains(&i["marker_age_seconds"].as_i64().unwrap()));
    let b = find(&busy.name);
    assert_eq!(b["action"], "skip-not-idle");
    assert_eq!(b["target"], "0.0.35", "empty marker → installed version");
    assert_eq!(b["gate"]["active"], 1);
    assert_eq!(find("gone")["action"], "clear");
    assert_eq!(find("8 bytes [????????]")["action"], "ignore");
    // read-only: nothing deleted, restarted, backed up, or sent to syslog
    assert!(sl.datagrams().is_empty());
    assert!(lab.defer.join("gone").exists());
    assert!(!lab.backups.exists());
    let calls = lab.fakes.calls()[before..].to_vec();
    assert!(
        calls.iter().all(|c| c.starts_with("systemctl show")
            || c.starts_with("systemctl is-active")
            || c.starts_with("t3 --version")),
        "{calls:?}"
    );
    // human form
    let (code, out, _) = run(cmd(&lab, None, &["status"]));
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("freeze: {} absent", lab.freeze.display())),
        "{out}"
    );
    assert!(
        out.contains("installed: 0.0.35\n") && out.contains("last_good: 0.0.34\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  {}: action=migrate target=0.0.36", idle.name)),
        "{out}"
    );
    assert!(
        out.contains(&format!("  {}: action=skip-not-idle", busy.name)),
        "{out}"
    );
    // frozen shows up with its age
    fs::write(&lab.freeze, "").unwrap();
    set_mtime(&lab.freeze, now() - 120);
    let (_, out, _) = run(cmd(&lab, None, &["status", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["freeze"]["present"], true);
    assert!(v["freeze"]["age_seconds"].as_i64().unwrap() >= 120);
    // an unreadable DEFER_DIR is exit 2 (a file in its place is "absent": exit 0)
    fs::remove_file(&lab.freeze).unwrap();
    let (code, _, err) = run(cmd(&lab, None, &["status", "--quiet-seconds", "x"]));
    assert_eq!(
        (code, err.trim()),
        (2, "t3-migrate-idle: ERROR: invalid --quiet-seconds=x")
    );
}

#[test]
fn metrics_textfile_and_pushgateway() {
    let lab = Lab::new();
    let pg = testkit::Pushgateway::start();
    let tf = lab.root().join("textfile/t3_migrate_idle.prom");
    fs::create_dir_all(tf.parent().unwrap()).unwrap();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[(Some("turn"), &ts_ago(10))], false);
    lab.marker(&u.name, "0.0.36\n", now() - 4 * 86400);
    lab.marker("gone", "1.0\n", now() - 60);
    lab.systemd(&[
        (&u.name, true, Some(now() - 5 * 86400)),
        ("gone", false, None),
    ]);
    let mut c = cmd(&lab, None, &["--metrics-textfile", tf.to_str().unwrap()]);
    c.env("T3_PUSHGATEWAY_URL", pg.url());
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "{err}");
    let text = fs::read_to_string(&tf).unwrap();
    for want in [
        "t3_migrate_idle_frozen 0",
        "t3_migrate_idle_markers 1",
        "t3_migrate_idle_last_pass_migrated 0",
        "t3_migrate_idle_last_pass_skipped 1",
        "t3_migrate_idle_last_result{result=\"ok\"} 1",
        "t3_migrate_idle_last_result{result=\"failed\"} 0",
        "t3_migrate_idle_last_run_timestamp_seconds ",
    ] {
        assert!(text.contains(want), "lacks {want:?}:\n{text}");
    }
    let age_line = text
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "t3_migrate_idle_marker_age_seconds{{user=\"{}\"}}",
                u.name
            ))
        })
        .unwrap_or_else(|| panic!("{text}"));
    let age: f64 = age_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(age >= 4.0 * 86400.0);
    assert!(
        !text.contains("user=\"gone\""),
        "cleared marker has no series"
    );
    let pushed = pg.metrics_text();
    assert!(pushed.contains("job=\"t3_migrate_idle\""), "{pushed}");
    assert!(pushed.contains("t3_migrate_idle_markers{"), "{pushed}");
    // a frozen pass still exposes the waiting markers
    fs::write(&lab.freeze, "").unwrap();
    let (code, _, _) = run(cmd(
        &lab,
        None,
        &["--metrics-textfile", tf.to_str().unwrap()],
    ));
    assert_eq!(code, 0);
    let text = fs::read_to_string(&tf).unwrap();
    assert!(text.contains("t3_migrate_idle_frozen 1"), "{text}");
    assert!(text.contains("t3_migrate_idle_markers 1"), "{text}");
    assert!(
        text.contains("t3_migrate_idle_last_result{result=\"frozen\"} 1"),
        "{text}"
    );
}

#[test]
fn pushgateway_secret_never_printed() {
    let lab = Lab::new();
    let dead = HttpServer::start(|_| Reply::text(500, "nope"));
    let url = format!("http://user:hunter2@{}", dead.addr());
    let mut c = cmd(&lab, None, &[]);
    c.env("T3_PUSHGATEWAY_URL", &url);
    let (code, out, err) = run(c);
    assert_eq!(code, 0);
    assert!(out.contains("WARN: metrics push failed"), "{out}");
    assert!(!out.contains("hunter2") && !err.contains("hunter2"));
}

#[test]
fn a_real_pass_migrates_through_the_binary() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[(None, &ts_ago(7200))], true);
    let m = lab.marker(&u.name, "0.0.36\n", now() - 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    lab.map(&format!("ak-{0}={0}\n", u.name));
    let d = HttpServer::start(|_| {
        Reply::new(302)
            .header("Location", "/")
            .header("Set-Cookie", "t3_session=ok; Path=/")
    });
    let (code, out, err) = run(cmd(&lab, None, &["--dispatch", &d.addr().to_string()]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!(
        "t3-migrate-idle: migrated t3-serve@{}.service -> 0.0.36 (idle restart)\n",
        u.name
    )));
    assert!(out.ends_with("t3-migrate-idle: idle-migrate pass complete (migrated=1 skipped=0)\n"));
    assert!(!m.exists());
    let b: Vec<_> = fs::read_dir(lab.backups.join(&u.name))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(b.len(), 1);
    assert_eq!(owner(&b[0].path()), u.uid);
}

fn unit_text(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../systemd")
        .join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn systemd_units_match_the_spec_and_verify() {
    let svc = unit_text("t3-migrate-idle.service");
    let tim = unit_text("t3-migrate-idle.timer");
    for l in [
        "Type=oneshot",
        "ExecStart=/usr/local/bin/t3-migrate-idle",
        "After=network.target t3-dispatch.service",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(svc.lines().any(|x| x == l), "service lacks {l}");
    }
    assert!(!svc.lines().any(|l| l.starts_with("User=")), "runs as root");
    let rw = svc
        .lines()
        .find(|l| l.starts_with("ReadWritePaths="))
        .unwrap();
    for p in [
        "/run",
        "/etc",
        "/var/lib/t3-autoupdate",
        "/var/backups",
        "/home",
    ] {
        assert!(
            rw.split_whitespace().any(|x| x
                .trim_start_matches('-')
                .trim_start_matches("ReadWritePaths=")
                == p),
            "{rw} lacks {p}"
        );
    }
    for l in [
        "OnCalendar=*-*-* 01..05:00/20",
        "RandomizedDelaySec=120",
        "Persistent=false",
        "WantedBy=timers.target",
    ] {
        assert!(tim.lines().any(|x| x == l), "timer lacks {l}");
    }
    let sa = testkit::require_bin("systemd-analyze", &[], "apt-get install -y systemd");
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("t3-migrate-idle.service"),
        svc.replace("/usr/local/bin/t3-migrate-idle", BIN),
    )
    .unwrap();
    fs::write(tmp.path().join("t3-migrate-idle.timer"), &tim).unwrap();
    let out = Command::new(sa)
        .args([
            "verify",
            "--man=no",
            "t3-migrate-idle.service",
            "t3-migrate-idle.timer",
        ])
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let findings: Vec<&str> = err
        .lines()
        .filter(|l| {
            !l.trim().is_empty() && !l.contains("Failed to connect to bus") && !l.contains("(bus)")
        })
        .collect();
    assert!(out.status.success() && findings.is_empty(), "{err}");
}

#[test]
fn unreadable_defer_dir_is_exit_2() {
    // Root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (dropped from the bounding set by
    // setpriv) cannot list a mode-000 DEFER_DIR: the pass must stop with exit 2.
    let setpriv = testkit::require_bin(
        "setpriv",
        &["/usr/bin/setpriv"],
        "apt-get install -y util-linux",
    );
    let lab = Lab::new();
    lab.marker("gone", "1.0\n", now() - 60);
    lab.systemd(&[("gone", false, None)]);
    fs::set_permissions(
        &lab.defer,
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    let mut c = Command::new(setpriv);
    c.args(["--bounding-set", "-dac_override,-dac_read_search", BIN])
        .env_clear()
        .env("PATH", lab.fakes.path())
        .args(lab.args());
    let (code, out, _) = run(c);
    fs::set_permissions(
        &lab.defer,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        out,
        format!(
            "t3-migrate-idle: ERROR: cannot read {}: Permission denied (os error 13)\n",
            lab.defer.display()
        )
    );
    assert!(lab.defer.join("gone").exists());
    assert!(!lab.fakes.calls().iter().any(|c| c.contains("t3-serve@")));
}

#[test]
fn backup_that_cannot_be_written_whole_is_m5_and_leaves_nothing() {
    // A file-size limit (prlimit --fsize, inherited by the per-user child) stands in for a
    // full backup disk: VACUUM INTO dies half-way.
    let prlimit = testkit::require_bin(
        "prlimit",
        &["/usr/bin/prlimit"],
        "apt-get install -y util-linux",
    );
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let rows: Vec<String> = (0..400).map(|i| ts_ago(7200 + i)).collect();
    let rows: Vec<(Option<&str>, &str)> = rows.iter().map(|t| (None, t.as_str())).collect();
    make_db(&lab, &u, &rows, false);
    let m = lab.marker(&u.name, "0.0.36\n", now() - 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    let mut c = Command::new(prlimit);
    c.args(["--fsize=8192", BIN])
        .env_clear()
        .env("PATH", lab.fakes.path())
        .args(lab.args());
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "t3-migrate-idle: WARN: pre-restart backup failed for {} \u{2014} skipping (fail closed)\n",
            u.name
        )),
        "{out}"
    );
    assert!(out.ends_with("t3-migrate-idle: idle-migrate pass complete (migrated=0 skipped=1)\n"));
    assert!(m.exists());
    let left: Vec<_> = fs::read_dir(lab.backups.join(&u.name)).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!lab
        .fakes
        .calls()
        .iter()
        .any(|c| c.starts_with("systemctl restart")));
}
