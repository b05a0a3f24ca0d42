//! §4 drain pass with recording fakes for systemctl/t3/npm, real DBs read and backed up as a
//! throwaway user, a loopback dispatch stand-in and a fake clock (§9.2.5-§9.2.7, §9.2.12, §8).

use super::common::*;
use super::fakecmd::{rule, rule_fx};
use std::fs;
use std::time::Duration;
use t3_migrate_idle::markers;
use t3_migrate_idle::report::{self as rp, Log};
use t3_migrate_idle::{drain, PassResult, Summary};
use testkit::{HttpServer, Reply};

fn pass(lab: &Lab, extra: &[&str]) -> (Summary, Vec<String>, Vec<Duration>) {
    pass_with(lab, extra, |_| {})
}

fn pass_with(
    lab: &Lab,
    extra: &[&str],
    f: impl FnOnce(&mut t3_migrate_idle::config::Config),
) -> (Summary, Vec<String>, Vec<Duration>) {
    let mut cfg = lab.cfg(extra);
    f(&mut cfg);
    let log = Log::capture();
    let world = FakeWorld::new();
    let s = drain(&cfg, &log, &world, &t3_migrate_idle::commands(&cfg));
    (s, log.lines(), world.sleeps())
}

/// Calls that change something (restart/stop/start, npm).
fn actions(lab: &Lab) -> Vec<String> {
    lab.fakes
        .calls()
        .into_iter()
        .filter(|c| {
            !c.starts_with("systemctl show")
                && !c.starts_with("systemctl is-active")
                && !c.starts_with("t3 ")
        })
        .collect()
}

fn good_dispatch() -> HttpServer {
    HttpServer::start(|_| {
        Reply::new(302)
            .header("Location", "/")
            .header("Set-Cookie", "t3_session=ok; Path=/")
    })
}

fn bad_dispatch() -> HttpServer {
    HttpServer::start(|_| Reply::new(302).header("Set-Cookie", "t3_session_3773_ab=x"))
}

#[test]
fn frozen_pass_touches_nothing() {
    let lab = Lab::new();
    fs::write(&lab.freeze, "").unwrap();
    let m = lab.marker("gone", "1.0\n", now() - 60);
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(lines, vec![rp::m1(&lab.freeze)]);
    assert_eq!(
        lines[0],
        format!(
            "FROZEN: {} present \u{2014} not draining deferrals",
            lab.freeze.display()
        )
    );
    assert_eq!((s.exit_code, s.result), (0, PassResult::Frozen));
    assert!(m.exists());
    assert!(
        lab.fakes.calls().iter().all(|c| !c.contains("t3-serve@")),
        "{:?}",
        lab.fakes.calls()
    );
    // a dangling symlink counts as frozen too
    fs::remove_file(&lab.freeze).unwrap();
    std::os::unix::fs::symlink(lab.root().join("nowhere"), &lab.freeze).unwrap();
    assert_eq!(pass(&lab, &[]).0.result, PassResult::Frozen);
}

#[test]
fn no_defer_dir_is_silent_and_empty_dir_reports_zero() {
    let lab = Lab::new();
    fs::remove_dir(&lab.defer).unwrap();
    let (s, lines, _) = pass(&lab, &[]);
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(s.exit_code, 0);
    fs::create_dir(&lab.defer).unwrap();
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines,
        vec!["idle-migrate pass complete (migrated=0 skipped=0)"]
    );
    assert_eq!(s.exit_code, 0);
}

#[test]
fn lock_busy_and_sibling_running_skip_the_pass() {
    let lab = Lab::new();
    let m = lab.marker("gone", "1.0\n", now() - 60);
    let g = homelab_core::fsx::try_lock(&lab.lock).unwrap();
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines,
        vec!["skipping: another t3-migrate-idle pass is running"]
    );
    assert_eq!((s.exit_code, s.result), (0, PassResult::Skipped));
    drop(g);
    lab.systemd_with(
        &[],
        &[sibling_rule(
            "t3-watchdog.service",
            "oneshot",
            "activating",
            "start",
        )],
    );
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines,
        vec!["skipping: t3-watchdog.service is running (Type=oneshot ActiveState=activating SubState=start)"]
    );
    assert_eq!(s.exit_code, 0);
    assert!(m.exists());
}

#[test]
fn inactive_unit_clears_marker_even_for_a_vanished_user() {
    let lab = Lab::new();
    let m = lab.marker("gone", "1.0\n", now() - 60);
    lab.systemd(&[("gone", false, None)]);
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines,
        vec![
            "clearing marker for gone: t3-serve@gone.service not active".to_string(),
            rp::m8(0, 0)
        ]
    );
    assert!(!m.exists());
    assert_eq!(s.exit_code, 0);
    // vanished user with an active unit: WARN, skipped, kept
    let m = lab.marker("gone", "1.0\n", now() - 60);
    lab.systemd(&[("gone", true, Some(now() - 10))]);
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines,
        vec![
            "WARN: ignoring marker gone: no such user".to_string(),
            rp::m8(0, 1)
        ]
    );
    assert!(m.exists());
    assert_eq!(s.skipped, 1);
}

#[test]
fn systemctl_failure_on_is_active_is_a_warn_and_keeps_the_marker() {
    let lab = Lab::new();
    let m = lab.marker("gone", "1.0\n", now() - 60);
    lab.systemd_with(
        &[],
        &[rule("is-active --quiet t3-serve@gone.service", "", 4)],
    );
    let (s, lines, _) = pass(&lab, &[]);
    assert!(
        lines[0].starts_with("WARN: cannot query t3-serve@gone.service \u{2014} skipping"),
        "{lines:?}"
    );
    assert_eq!(s.skipped, 1);
    assert!(m.exists());
    // systemctl missing entirely: the sibling check cannot tell, so the pass stands down
    // (issue 15 item 3, fail closed); nothing cleared.
    fs::remove_file(lab.fakes.dir.join("systemctl")).unwrap();
    let only_fakes = lab.fakes.dir.clone();
    let (s, lines, _) = pass_with(&lab, &[], |c| c.path = Some(only_fakes.into()));
    assert!(
        lines[0].starts_with("skipping: cannot tell whether t3-autoupdate.service is running (systemctl show failed: cannot run "),
        "{lines:?}"
    );
    assert_eq!(s.result, PassResult::Skipped);
    assert!(m.exists());
}

#[test]
fn restarted_after_deferral_clears_with_m3_equal_or_unknown_start_runs_the_gate() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let t = now() - 3600;
    let m = lab.marker(&u.name, "1.0\n", t);
    lab.systemd(&[(&u.name, true, Some(t + 42))]);
    let (_, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines[0],
        format!("clearing marker for {0}: t3-serve@{0}.service already restarted 42s after the deferral", u.name)
    );
    assert!(!m.exists());
    // start == mtime: not cleared; the gate runs (no DB → fail closed)
    let m = lab.marker(&u.name, "1.0\n", t);
    lab.systemd(&[(&u.name, true, Some(t))]);
    let (s, lines, _) = pass(&lab, &[]);
    assert!(
        lines[0].starts_with(&format!(
            "skipping t3-serve@{}.service: idle gate error \u{2014} fail closed (",
            u.name
        )),
        "{lines:?}"
    );
    assert!(m.exists());
    assert_eq!(s.skipped, 1);
    // unknown start: WARN, not cleared, gate runs
    lab.systemd(&[(&u.name, true, None)]);
    let (_, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines[0],
        format!(
            "WARN: cannot read start time of t3-serve@{}.service",
            u.name
        )
    );
    assert!(lines[1].contains("idle gate error"), "{lines:?}");
    assert!(m.exists());
    // marker mtime in the future (clock stepped back): not cleared
    let m = lab.marker(&u.name, "1.0\n", now() + 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 10))]);
    let (_, lines, _) = pass(&lab, &[]);
    assert!(lines[0].contains("idle gate error"), "{lines:?}");
    assert!(m.exists());
    assert!(actions(&lab).is_empty(), "{:?}", actions(&lab));
}

#[test]
fn busy_instance_is_skipped_and_kept_never_restarted() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(
        &lab,
        &u,
        &[(Some("turn-1"), &ts_ago(5000)), (None, &ts_ago(5000))],
        false,
    );
    let m = lab.marker(&u.name, "1.0\n", now() - 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    let (s, lines, _) = pass(&lab, &[]);
    // The pass reads the clock after the fixture did: a second boundary may fall between.
    let line = |idle: u32| {
        format!(
            "skipping t3-serve@{}.service: not idle (active_turns=1 idle={idle}s quiet=900s)",
            u.name
        )
    };
    assert!(
        lines == vec![line(5000), rp::m8(0, 1)] || lines == vec![line(5001), rp::m8(0, 1)],
        "{lines:?}"
    );
    assert!(m.exists());
    // quiet not reached
    fs::remove_dir_all(lab.home.join(&u.name)).unwrap();
    make_db(&lab, &u, &[(None, &ts_ago(100))], false);
    let (_, lines, _) = pass(&lab, &[]);
    assert!(
        lines[0].ends_with("not idle (active_turns=0 idle=100s quiet=900s)")
            || lines[0].ends_with("idle=101s quiet=900s)"),
        "{lines:?}"
    );
    assert!(m.exists());
    assert_eq!(s.exit_code, 0);
    assert!(actions(&lab).is_empty(), "{:?}", actions(&lab));
}

#[test]
fn dry_run_decides_and_deletes_nothing() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let v = TestUser::create(&lab.home);
    make_db(&lab, &u, &[(None, &ts_ago(5000))], false);
    let t = now() - 3600;
    let m_gone = lab.marker("gone", "1.0\n", t);
    let m_u = lab.marker(&u.name, "0.0.34-nightly.20260621.613\n", t);
    let m_v = lab.marker(&v.name, "1.0\n", t);
    lab.systemd(&[
        ("gone", false, None),
        (&u.name, true, Some(t - 100)),
        (&v.name, true, Some(t + 5)),
    ]);
    let (s, lines, _) = pass(&lab, &["--dry-run"]);
    let mut want = vec![
        "DRY_RUN: would clear marker for gone: t3-serve@gone.service not active".to_string(),
        format!("DRY_RUN: would migrate t3-serve@{}.service -> 0.0.34-nightly.20260621.613 (idle gate satisfied)", u.name),
        format!("DRY_RUN: would clear marker for {0}: t3-serve@{0}.service already restarted 5s after the deferral", v.name),
    ];
    // markers are processed in byte order of name
    let mut order: Vec<(&str, String)> = vec![
        ("gone", want[0].clone()),
        (&u.name, want[1].clone()),
        (&v.name, want[2].clone()),
    ];
    order.sort_by(|a, b| a.0.cmp(b.0));
    want = order.into_iter().map(|x| x.1).collect();
    want.push(rp::m8(0, 0));
    assert_eq!(lines, want);
    assert!(m_gone.exists() && m_u.exists() && m_v.exists());
    assert!(actions(&lab).is_empty(), "{:?}", actions(&lab));
    assert!(!lab.backups.exists());
    assert_eq!(s.exit_code, 0);
    // T3_DRY_RUN=1 is the same switch
    let cli = <t3_migrate_idle::cli::Cli as clap::Parser>::try_parse_from(["x"]).unwrap();
    assert!(
        t3_migrate_idle::config::Config::from_cli(&cli, &|k| (k == "T3_DRY_RUN")
            .then(|| "1".into()))
        .unwrap()
        .dry_run
    );
}

#[test]
fn marker_names_and_kinds_are_validated_and_never_restarted() {
    let lab = Lab::new();
    let t = now() - 3600;
    lab.marker(".x", "1.0", t);
    lab.marker("Foo Bar", "1.0", t);
    lab.marker("root", "1.0", t);
    let real = lab.root().join("elsewhere");
    fs::write(&real, "1.0").unwrap();
    std::os::unix::fs::symlink(&real, lab.defer.join("lnk")).unwrap();
    fs::create_dir(lab.defer.join("adir")).unwrap();
    nix::unistd::mkfifo(
        &lab.defer.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::os::unix::net::UnixListener::bind(lab.defer.join("sock")).unwrap();
    fs::write(lab.defer.join("bad\nname"), "1.0").unwrap();
    lab.systemd(&[
        ("lnk", false, None),
        ("adir", false, None),
        ("fifo", false, None),
        ("sock", false, None),
    ]);
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines,
        vec![
            "WARN: ignoring marker 7 bytes [???????]: not a valid user name",
            "WARN: ignoring marker adir: is a directory",
            "WARN: ignoring marker 8 bytes [????????]: not a valid user name",
            "WARN: ignoring marker fifo: is a FIFO",
            "WARN: ignoring marker lnk: is a symlink",
            "WARN: ignoring marker root: root is never migrated",
            "WARN: ignoring marker sock: is a socket",
            "idle-migrate pass complete (migrated=0 skipped=7)",
        ]
    );
    assert_eq!(s.skipped, 7);
    assert!(
        lab.fakes.calls().iter().all(|c| !c.contains("t3-serve@")),
        "{:?}",
        lab.fakes.calls()
    );
    assert!(lab.defer.join(".x").exists() && lab.defer.join("lnk").exists() && real.exists());
}

#[test]
fn marker_content_gives_the_target() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[], false);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    let t = now() - 3600;
    let unit = format!("t3-serve@{}.service", u.name);
    let run = |content: &[u8]| {
        fs::write(lab.defer.join(&u.name), content).unwrap();
        set_mtime(&lab.defer.join(&u.name), t);
        pass(&lab, &["--dry-run"]).1
    };
    assert_eq!(
        run(b"0.0.34-nightly.20260621.613\n")[0],
        format!(
            "DRY_RUN: would migrate {unit} -> 0.0.34-nightly.20260621.613 (idle gate satisfied)"
        )
    );
    assert_eq!(
        run(b"")[0],
        format!("DRY_RUN: would migrate {unit} -> 0.0.35 (idle gate satisfied)")
    );
    assert_eq!(
        run(b" \n\t ")[0],
        format!("DRY_RUN: would migrate {unit} -> 0.0.35 (idle gate satisfied)")
    );
    let l = run(b"../../x\n");
    assert_eq!(
        l[0],
        format!(
            "WARN: marker {} holds an invalid version \u{2014} using installed 0.0.35",
            u.name
        )
    );
    assert_eq!(
        l[1],
        format!("DRY_RUN: would migrate {unit} -> 0.0.35 (idle gate satisfied)")
    );
    // huge/binary content: only 256 bytes read, invalid → installed
    let mut big = vec![0xffu8; 10_000];
    big[0] = b'1';
    let l = run(&big);
    assert!(l[0].starts_with("WARN: marker"), "{l:?}");
    // t3 --version fails and the marker is empty: fail closed
    lab.t3(None);
    let l = run(b"");
    assert_eq!(
        l[0],
        format!(
            "WARN: cannot determine target version for {} \u{2014} skipping (fail closed)",
            u.name
        )
    );
    assert_eq!(l[1], rp::m8(0, 1));
}

#[test]
fn successful_migration_backs_up_restarts_verifies_and_deletes_the_marker() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let v = TestUser::create(&lab.home);
    make_db(
        &lab,
        &u,
        &[(None, &ts_ago(3600)), (None, &ts_ago(7200))],
        true,
    );
    let m = lab.marker(&u.name, "0.0.35\n", now() - 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    lab.map(&format!("{}-ak={}\n", u.name, u.name));
    let d = good_dispatch();
    let (s, lines, sleeps) = pass(&lab, &["--dispatch", &d.addr().to_string()]);
    assert_eq!(
        lines,
        vec![
            format!(
                "restarted t3-serve@{}.service -> 0.0.35 (pairing verified via dispatch)",
                u.name
            ),
            format!(
                "migrated t3-serve@{}.service -> 0.0.35 (idle restart)",
                u.name
            ),
            format!("t3-serve@{}.service was idle 60m", u.name),
            rp::m8(1, 0),
        ]
    );
    assert!(sleeps.is_empty());
    assert_eq!((s.exit_code, s.migrated), (0, 1));
    assert!(!m.exists());
    assert_eq!(
        actions(&lab),
        vec![format!("systemctl restart t3-serve@{}.service", u.name)]
    );
    assert_eq!(
        d.requests()[0].header("X-authentik-username"),
        Some(format!("{}-ak", u.name).as_str())
    );
    let backups: Vec<_> = fs::read_dir(lab.backups.join(&u.name))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(backups.len(), 1);
    // §8.1: nothing under the home or the backup dir is written by root
    for p in walk(&lab.home.join(&u.name))
        .into_iter()
        .chain(walk(&lab.backups.join(&u.name)))
    {
        assert_eq!(owner(&p), u.uid, "{} not owned by the user", p.display());
    }
    assert!(!lab.freeze.exists());
    let _ = v;
}

#[test]
fn failed_verification_recovers_in_order_freezes_and_stops_the_drain() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let db = make_db(&lab, &u, &[(None, &ts_ago(3600))], false);
    let t = now() - 3600;
    let m = lab.marker(&u.name, "0.0.35\n", t);
    let later = lab.marker("zzz-later", "1.0\n", t);
    fs::write(&lab.last_good, " 0.0.34 \n").unwrap();
    let dbs = db.display().to_string();
    let freeze = lab.freeze.display().to_string();
    let unit = format!("t3-serve@{}.service", u.name);
    lab.systemd_with(
        &[
            (&u.name, true, Some(now() - 86400)),
            ("zzz-later", false, None),
        ],
        &[
            // the "new binary" migrates the DB and leaves WAL files behind
            rule_fx(
                &format!("restart {unit}"),
                "",
                0,
                &format!(
                    "printf migrated > '{dbs}'; printf w > '{dbs}-wal'; printf s > '{dbs}-shm'"
                ),
            ),
            // the DB is still the migrated one when the unit is stopped ...
            rule_fx(
                &format!("stop {unit}"),
                "",
                0,
                &format!(
                    "echo \"db at stop: $(head -c 8 '{dbs}')\" >> '{calls}'",
                    calls = lab.fakes.calls.display()
                ),
            ),
            // ... restored before it starts again, and the freeze comes only after the start
            rule_fx(
                &format!("start {unit}"),
                "",
                0,
                &format!(
                    "echo \"db at start: $(head -c 15 '{dbs}')\" >> '{calls}'; [ -e '{freeze}' ] && echo 'freeze before start' >> '{calls}'",
                    calls = lab.fakes.calls.display()
                ),
            ),
        ],
    );
    lab.map(&format!("ak={}\n", u.name));
    let d = bad_dispatch();
    let (s, lines, sleeps) = pass(&lab, &["--dispatch", &d.addr().to_string()]);
    let backup = fs::read_dir(lab.backups.join(&u.name))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    assert_eq!(
        lines,
        vec![
            format!("HEALTH-CHECK FAILED: {} pairing broken AFTER restart onto 0.0.35 \u{2014} rolling back + restoring its DB", u.name),
            "rolling back binary 0.0.35 -> 0.0.34".to_string(),
            "rolled back to 0.0.34".to_string(),
            format!("restored {} state.sqlite from {}", u.name, backup.display()),
            format!(
                "FROZEN ({}) after {} failed on 0.0.35; last_good stays 0.0.34 \u{2014} investigate, then remove the freeze file to resume",
                lab.freeze.display(),
                u.name
            ),
            format!("migrate FAILED for {unit} \u{2014} recovery+freeze handled by safe_restart_unit; stopping drain"),
        ]
    );
    assert_eq!((s.exit_code, s.result), (1, PassResult::Failed));
    assert_eq!(sleeps, vec![Duration::from_secs(2); 15]);
    assert_eq!(d.request_count(), 15);
    assert_eq!(
        actions(&lab),
        vec![
            format!("systemctl restart {unit}"),
            "npm i -g t3@0.0.34".to_string(),
            format!("systemctl stop {unit}"),
            "db at stop: migrated".to_string(),
            format!("systemctl start {unit}"),
            "db at start: SQLite format 3".to_string(),
        ]
    );
    assert!(m.exists(), "marker of a failed attempt is kept");
    assert!(later.exists(), "later markers untouched");
    // (its facts may have been gathered read-only up front; nothing acted on it)
    assert!(!actions(&lab).iter().any(|c| c.contains("zzz-later")));
    assert!(lab.freeze.exists());
    assert_eq!(mode(&lab.freeze), 0o644);
    // DB restored as the user, WAL files gone
    assert_eq!((owner(&db), mode(&db)), (u.uid, 0o600));
    let n: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM projection_thread_sessions", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
    assert!(
        !db.with_file_name("state.sqlite-wal").exists()
            && !db.with_file_name("state.sqlite-shm").exists()
    );
    // the next pass is frozen
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(
        (s.result, lines),
        (PassResult::Frozen, vec![rp::m1(&lab.freeze)])
    );
}

#[test]
fn no_valid_last_good_skips_npm_and_still_freezes() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[], false);
    lab.marker(&u.name, "0.0.35\n", now() - 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    lab.t3(None);
    lab.map(&format!("ak={}\n", u.name));
    let d = bad_dispatch();
    let (s, lines, _) = pass(&lab, &["--dispatch", &d.addr().to_string()]);
    assert_eq!(s.exit_code, 1);
    assert!(lines.contains(&"ROLLBACK FAILED \u{2014} no valid last-good version recorded (manual fix per runbook)".to_string()), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("rolling back binary")));
    assert!(!lab.fakes.calls().iter().any(|c| c.starts_with("npm")));
    assert!(lab.freeze.exists());
}

#[test]
fn missing_last_good_uses_installed_and_unwritable_freeze_dir_warns_but_exits_1() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[], false);
    lab.marker(&u.name, "0.0.36\n", now() - 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    lab.npm(1);
    lab.map(&format!("ak={}\n", u.name));
    let d = bad_dispatch();
    let freeze = lab.root().join("no-such-dir/t3-autoupdate.freeze");
    let (s, lines, _) = pass(
        &lab,
        &[
            "--dispatch",
            &d.addr().to_string(),
            "--freeze-file",
            freeze.to_str().unwrap(),
        ],
    );
    assert_eq!(s.exit_code, 1);
    assert!(
        lines.contains(&"rolling back binary 0.0.36 -> 0.0.35".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"ROLLBACK FAILED \u{2014} could not reinstall t3@0.0.35 (t3 may be broken; manual fix per runbook)".to_string()));
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "WARN: could not create freeze file {}: ",
            freeze.display()
        ))),
        "{lines:?}"
    );
    assert!(lab
        .fakes
        .calls()
        .contains(&"npm i -g t3@0.0.35".to_string()));
}

#[test]
fn backup_failure_is_m5_and_keeps_the_marker() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[], false);
    let m = lab.marker(&u.name, "0.0.35\n", now() - 3600);
    lab.systemd(&[(&u.name, true, Some(now() - 86400))]);
    fs::write(&lab.backups, "a file where the backup dir should be").unwrap();
    let (s, lines, _) = pass(&lab, &[]);
    assert!(
        lines.contains(&format!(
            "WARN: pre-restart backup failed for {} \u{2014} skipping (fail closed)",
            u.name
        )),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), &rp::m8(0, 1));
    assert!(m.exists());
    assert!(actions(&lab).is_empty());
    assert_eq!(s.exit_code, 0);
}

#[test]
fn freeze_appearing_mid_pass_stops_before_any_restart() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[], false);
    let m = lab.marker(&u.name, "0.0.35\n", now() - 3600);
    let unit = format!("t3-serve@{}.service", u.name);
    lab.systemd_with(
        &[(&u.name, true, Some(now() - 86400))],
        &[rule_fx(
            &format!("show -p ActiveEnterTimestamp --value --timestamp=unix {unit}"),
            "@1",
            0,
            &format!("touch '{}'", lab.freeze.display()),
        )],
    );
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(lines, vec![rp::m1(&lab.freeze)]);
    assert_eq!((s.exit_code, s.result), (0, PassResult::Frozen));
    assert!(m.exists());
    assert!(actions(&lab).is_empty());
    assert!(!lab.backups.exists());
}

#[test]
fn marker_rewritten_during_the_pass_is_kept() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[], false);
    let m = lab.marker(&u.name, "0.0.35\n", now() - 3600);
    let unit = format!("t3-serve@{}.service", u.name);
    lab.systemd_with(
        &[(&u.name, true, Some(now() - 86400))],
        &[rule_fx(
            &format!("restart {unit}"),
            "",
            0,
            &format!("printf '0.0.36\\n' > '{}'", m.display()),
        )],
    );
    // no mapping: R2, verification counts as passed (§11.1)
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(
        lines[0],
        format!(
            "no authentik mapping for {} \u{2014} skipping dispatch verify",
            u.name
        )
    );
    assert!(
        lines.contains(&format!(
            "WARN: marker {} changed during the pass \u{2014} kept",
            u.name
        )),
        "{lines:?}"
    );
    assert_eq!(fs::read_to_string(&m).unwrap(), "0.0.36\n");
    assert_eq!(s.migrated, 1);
}

#[test]
fn compare_then_delete_unit() {
    let lab = Lab::new();
    let p = lab.marker("u", "1.0\n", now() - 10);
    let seen = markers::read(&p).unwrap();
    set_mtime(&p, now() - 5);
    assert_eq!(
        markers::delete_if_unchanged(&p, &seen),
        markers::Delete::Changed
    );
    let seen = markers::read(&p).unwrap();
    assert_eq!(
        markers::delete_if_unchanged(&p, &seen),
        markers::Delete::Deleted
    );
    assert_eq!(
        markers::delete_if_unchanged(&p, &seen),
        markers::Delete::AlreadyGone
    );
}

#[test]
fn a_restart_is_decided_on_a_fresh_gate_reading() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    // a busy copy of the user's DB, swapped in between the up-front read and the act
    let busy_db = make_db(&lab, &u, &[(Some("turn-9"), &ts_ago(5))], false);
    let busy = lab.root().join("busy.sqlite");
    fs::copy(&busy_db, &busy).unwrap();
    fs::remove_dir_all(lab.home.join(&u.name)).unwrap();
    let db = make_db(&lab, &u, &[(None, &ts_ago(7200))], false);
    let m = lab.marker(&u.name, "0.0.36\n", now() - 3600);
    let unit = format!("t3-serve@{}.service", u.name);
    let flag = lab.root().join("asked-once");
    lab.systemd_with(
        &[(&u.name, true, Some(now() - 86400))],
        &[rule_fx(
            &format!("is-active --quiet {unit}"),
            "",
            0,
            &format!(
                "if [ -e '{f}' ]; then cp '{b}' '{d}'; else touch '{f}'; fi",
                f = flag.display(),
                b = busy.display(),
                d = db.display()
            ),
        )],
    );
    let (s, lines, _) = pass(&lab, &[]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("skipping {unit}: not idle (active_turns=1 idle=")),
        "{lines:?}"
    );
    assert_eq!(lines[1], rp::m8(0, 1));
    assert_eq!(s.skipped, 1);
    assert!(m.exists());
    assert!(actions(&lab).is_empty(), "{:?}", actions(&lab));
    assert!(!lab.backups.exists());
    // the dry run decides on the up-front reading (it acts on nothing)
    fs::remove_file(&flag).unwrap();
    fs::remove_dir_all(lab.home.join(&u.name)).unwrap();
    make_db(&lab, &u, &[(None, &ts_ago(7200))], false);
    let (_, lines, _) = pass(&lab, &["--dry-run"]);
    assert_eq!(
        lines[0],
        format!("DRY_RUN: would migrate {unit} -> 0.0.36 (idle gate satisfied)")
    );
}

#[test]
fn many_markers_are_gathered_concurrently_and_reported_in_byte_order() {
    let lab = Lab::new();
    let users: Vec<TestUser> = (0..5).map(|_| TestUser::create(&lab.home)).collect();
    let mut spec = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let busy = i % 2 == 1;
        make_db(
            &lab,
            u,
            &[(busy.then_some("t"), &ts_ago(if busy { 30 } else { 5000 }))],
            i == 0,
        );
        lab.marker(&u.name, "0.0.36\n", now() - 3600);
        spec.push((u.name.clone(), busy));
    }
    let units: Vec<(&str, bool, Option<i64>)> = spec
        .iter()
        .map(|(n, _)| (n.as_str(), true, Some(now() - 86400)))
        .collect();
    lab.systemd(&units);
    let (s, lines, _) = pass(&lab, &["--dry-run"]);
    spec.sort();
    let want: Vec<String> = spec
        .iter()
        .map(|(n, busy)| {
            if *busy {
                format!("skipping t3-serve@{n}.service: not idle (active_turns=1 idle=")
            } else {
                format!(
                    "DRY_RUN: would migrate t3-serve@{n}.service -> 0.0.36 (idle gate satisfied)"
                )
            }
        })
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for (l, w) in lines.iter().zip(&want) {
        assert!(l.starts_with(w), "{l:?} vs {w:?}");
    }
    assert_eq!(lines[5], rp::m8(0, 2));
    assert_eq!(s.skipped, 2);
}

#[test]
fn marker_that_cannot_be_deleted_is_a_warn_and_the_pass_goes_on() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[], false);
    let m = lab.marker(&u.name, "0.0.35\n", now() - 3600);
    let unit = format!("t3-serve@{}.service", u.name);
    // during the restart something puts a directory where the marker was
    lab.systemd_with(
        &[(&u.name, true, Some(now() - 86400))],
        &[rule_fx(
            &format!("restart {unit}"),
            "",
            0,
            &format!("rm -f '{0}'; mkdir '{0}'; touch '{0}/x'", m.display()),
        )],
    );
    let (s, lines, _) = pass(&lab, &[]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("WARN: could not delete marker {}: ", u.name))),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), &rp::m8(1, 0));
    assert_eq!(s.exit_code, 0);
    assert!(m.is_dir());
}
