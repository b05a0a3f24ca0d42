//! §7 safe-restart routine: backup as the user (§7.1, §9.2.10), pairing verification against a
//! loopback t3-dispatch stand-in (§7.3, §9.2.8), restore as the user (§7.4d, §9.2.10).

use super::common::*;
use rusqlite::Connection;
use std::fs;
use std::time::Duration;
use t3_migrate_idle::asuser::{run_as, UserInfo};
use t3_migrate_idle::report::Log;
use t3_migrate_idle::restart::{backup_user, verify_pairing, Ctx};
use testkit::{HttpServer, Reply};

fn ctx_run<R>(lab: &Lab, cfg_extra: &[&str], f: impl FnOnce(&Ctx) -> R) -> (R, Vec<String>) {
    let cfg = lab.cfg(cfg_extra);
    let log = Log::capture();
    let world = FakeWorld::new();
    let cmds = t3_migrate_idle::commands(&cfg);
    let ctx = Ctx {
        cfg: &cfg,
        log: &log,
        world: &world,
        cmds: &cmds,
    };
    let r = f(&ctx);
    (r, log.lines())
}

/// A dispatch stand-in answering every request with `reply`.
fn dispatch(reply: Reply) -> HttpServer {
    HttpServer::start(move |_| reply.clone())
}

fn verify_with(server: &HttpServer, map: &str) -> (bool, Vec<String>, Vec<Duration>) {
    let lab = Lab::new();
    lab.map(map);
    let cfg = lab.cfg(&["--dispatch", &server.addr().to_string()]);
    let log = Log::capture();
    let world = FakeWorld::new();
    let cmds = t3_migrate_idle::commands(&cfg);
    let ctx = Ctx {
        cfg: &cfg,
        log: &log,
        world: &world,
        cmds: &cmds,
    };
    let ok = verify_pairing(&ctx, "wizard");
    (ok, log.lines(), world.sleeps())
}

#[test]
fn verify_accepts_t3_session_and_sends_the_dispatch_headers() {
    let s = dispatch(
        Reply::new(302)
            .header("Location", "/")
            .header("Set-Cookie", "t3_session=abc; Path=/; HttpOnly"),
    );
    let (ok, lines, sleeps) = verify_with(&s, "# map\nwiz-ak=wizard\n");
    assert!(ok && lines.is_empty() && sleeps.is_empty(), "{lines:?}");
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1, "302 must not be followed");
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/"));
    assert_eq!(r.header("X-authentik-username"), Some("wiz-ak"));
    assert_eq!(r.header("Sec-Fetch-Dest"), Some("document"));
    assert_eq!(r.header("Cookie"), None);
}

#[test]
fn verify_raw_lowercase_header_without_space_is_success() {
    let s = dispatch(Reply::raw(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nset-cookie:t3_session=x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ));
    let (ok, _, _) = verify_with(&s, "ak=wizard\n");
    assert!(ok);
    assert_eq!(s.request_count(), 1);
}

#[test]
fn verify_several_cookies_one_right() {
    let s = dispatch(
        Reply::new(302)
            .header("Set-Cookie", "t3_session_3773_ab=x")
            .header("Set-Cookie", "t3_session=y"),
    );
    assert!(verify_with(&s, "ak=wizard\n").0);
}

#[test]
fn verify_wrong_cookie_name_fails_after_15_attempts_with_2s_sleeps() {
    let s = dispatch(Reply::new(302).header("Set-Cookie", "t3_session_3773_ab=x"));
    let (ok, lines, sleeps) = verify_with(&s, "ak=wizard\n");
    assert!(!ok);
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(s.request_count(), 15);
    assert_eq!(sleeps, vec![Duration::from_secs(2); 15]);
}

#[test]
fn verify_no_cookie_and_dispatch_down_fail() {
    let s = dispatch(Reply::text(200, "no cookie"));
    let (ok, _, sleeps) = verify_with(&s, "ak=wizard\n");
    assert!(!ok);
    assert_eq!(sleeps.len(), 15);
    // dispatch down: a port with nothing listening
    let lab = Lab::new();
    lab.map("ak=wizard\n");
    let port = testkit::free_port();
    let (ok, _) = ctx_run(&lab, &["--dispatch", &format!("127.0.0.1:{port}")], |c| {
        verify_pairing(c, "wizard")
    });
    assert!(!ok);
}

#[test]
fn verify_without_mapping_is_r2_and_passes() {
    let s = dispatch(Reply::text(500, "never asked"));
    let (ok, lines, _) = verify_with(&s, "other=someone\n#ak=wizard\nx=y=wizard\n");
    assert!(ok);
    assert_eq!(
        lines,
        vec!["no authentik mapping for wizard \u{2014} skipping dispatch verify"]
    );
    assert_eq!(s.request_count(), 0);
    // missing map file: same
    let lab = Lab::new();
    let (ok, lines) = ctx_run(&lab, &[], |c| verify_pairing(c, "wizard"));
    assert!(ok);
    assert_eq!(lines.len(), 1);
}

#[test]
fn verify_slow_answer_counts_as_a_failed_attempt() {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let n2 = n.clone();
    let s = HttpServer::start(move |_| {
        if n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::new(302)
                .header("Set-Cookie", "t3_session=late")
                .delay(Duration::from_secs(12))
        } else {
            Reply::new(302).header("Set-Cookie", "t3_session=ok")
        }
    });
    let (ok, _, sleeps) = verify_with(&s, "ak=wizard\n");
    assert!(ok);
    assert_eq!(
        sleeps,
        vec![Duration::from_secs(2)],
        "one failed (timed out) attempt"
    );
}

#[test]
fn backup_is_taken_as_the_user_into_a_0700_dir() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(
        &lab,
        &u,
        &[(None, &ts_ago(3600)), (None, &ts_ago(4000))],
        true,
    );
    // pre-existing dir with wrong owner/mode: enforced on every backup
    fs::create_dir_all(lab.backups.join(&u.name)).unwrap();
    let info = UserInfo::lookup(&u.name).unwrap();
    let (r, lines) = ctx_run(&lab, &[], |c| {
        backup_user(c, &info, "0.0.34-nightly.20260621.613")
    });
    let b = r.unwrap();
    assert!(lines.is_empty());
    let dir = lab.backups.join(&u.name);
    assert_eq!((owner(&dir), mode(&dir)), (u.uid, 0o700));
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(&dir).unwrap().gid(), u.gid);
    }
    let name = b.file_name().unwrap().to_str().unwrap().to_string();
    let stamp = name
        .strip_prefix("state-prebump-0.0.34-nightly.20260621.613-")
        .and_then(|s| s.strip_suffix(".sqlite"))
        .unwrap_or_else(|| panic!("{name}"));
    assert_eq!(stamp.len(), 15, "{stamp}");
    assert!(
        stamp
            .chars()
            .enumerate()
            .all(|(i, c)| if i == 8 { c == '-' } else { c.is_ascii_digit() }),
        "{stamp}"
    );
    assert_eq!(owner(&b), u.uid);
    let n: i64 = Connection::open(&b)
        .unwrap()
        .query_row("SELECT count(*) FROM projection_thread_sessions", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 2);
    for p in walk(&lab.home.join(&u.name)).into_iter().chain(walk(&dir)) {
        assert_eq!(owner(&p), u.uid, "{} not owned by the user", p.display());
    }
}

#[test]
fn backup_failures_leave_no_partial_file() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let info = UserInfo::lookup(&u.name).unwrap();
    // missing DB
    let (r, _) = ctx_run(&lab, &[], |c| backup_user(c, &info, "1.0"));
    assert!(r.is_err());
    // DB exclusively locked and a 1 s limit: killed, nothing left behind
    let db = make_db(&lab, &u, &[(None, &ts_ago(3600))], false);
    let c = Connection::open(&db).unwrap();
    c.execute_batch("PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE projection_thread_sessions SET updated_at=updated_at;").unwrap();
    chown_tree(&lab.home.join(&u.name), &u);
    let (r, _) = ctx_run(&lab, &["--backup-timeout", "1"], |c| {
        backup_user(c, &info, "1.0")
    });
    let e = r.unwrap_err();
    assert!(e.contains("timed out") || e.contains("locked"), "{e}");
    let left: Vec<_> = fs::read_dir(lab.backups.join(&u.name)).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    c.execute_batch("COMMIT").unwrap();
}

#[test]
fn restore_as_the_user_replaces_db_0600_removes_wal_shm_and_never_follows_a_symlink() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let db = make_db(&lab, &u, &[(None, &ts_ago(3600))], false);
    let info = UserInfo::lookup(&u.name).unwrap();
    let (b, _) = ctx_run(&lab, &[], |c| backup_user(c, &info, "1.0"));
    let b = b.unwrap();
    // the live DB is now a symlink to a root file, with stray -wal/-shm
    let victim = lab.root().join("victim");
    fs::write(&victim, "do not touch").unwrap();
    fs::remove_file(&db).unwrap();
    std::os::unix::fs::symlink(&victim, &db).unwrap();
    let wal = db.with_file_name("state.sqlite-wal");
    let shm = db.with_file_name("state.sqlite-shm");
    fs::write(&wal, "w").unwrap();
    fs::write(&shm, "s").unwrap();
    chown_tree(&lab.home.join(&u.name), &u);
    run_as(
        BIN.as_ref(),
        &info,
        &["restore".as_ref(), b.as_os_str(), db.as_os_str()],
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "do not touch");
    let m = fs::symlink_metadata(&db).unwrap();
    assert!(m.is_file());
    assert_eq!((owner(&db), mode(&db)), (u.uid, 0o600));
    assert!(!wal.exists() && !shm.exists());
    let n: i64 = Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM projection_thread_sessions", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn privilege_drop_cannot_regain_root() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let info = UserInfo::lookup(&u.name).unwrap();
    // the child writes into a root-only dir: must fail as the user
    let dir = lab.root().join("rootonly");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(
        &dir,
        <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700),
    )
    .unwrap();
    let src = make_db(&lab, &u, &[], false);
    let r = run_as(
        BIN.as_ref(),
        &info,
        &[
            "restore".as_ref(),
            src.as_os_str(),
            dir.join("x.sqlite").as_os_str(),
        ],
        Duration::from_secs(30),
    );
    assert!(r.is_err());
    assert!(fs::read_dir(&dir).unwrap().next().is_none());
    assert!(UserInfo::lookup("root").is_err());
}

fn calls_changing(lab: &Lab) -> Vec<String> {
    lab.fakes
        .calls()
        .into_iter()
        .filter(|c| {
            c.starts_with("systemctl restart")
                || c.starts_with("systemctl stop")
                || c.starts_with("systemctl start")
                || c.starts_with("npm")
        })
        .collect()
}

#[test]
fn restart_nonzero_is_r1_and_verification_still_decides() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let info = UserInfo::lookup(&u.name).unwrap();
    let unit = format!("t3-serve@{}.service", u.name);
    lab.systemd_with(
        &[(&u.name, true, None)],
        &[super::fakecmd::rule(&format!("restart {unit}"), "", 1)],
    );
    lab.map(&format!("ak={}\n", u.name));
    let d = dispatch(Reply::new(302).header("Set-Cookie", "t3_session=ok"));
    let (ok, lines) = ctx_run(&lab, &["--dispatch", &d.addr().to_string()], |c| {
        t3_migrate_idle::restart::safe_restart_unit(c, &info, "0.0.36", "0.0.35", None)
    });
    assert!(ok);
    assert_eq!(
        lines,
        vec![
            format!("WARN: systemctl restart {unit} returned non-zero"),
            format!("restarted {unit} -> 0.0.36 (pairing verified via dispatch)"),
        ]
    );
    assert!(!lab.freeze.exists());
}

#[test]
fn recovery_when_stop_fails_skips_the_restore_but_still_starts_and_freezes() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let info = UserInfo::lookup(&u.name).unwrap();
    let db = make_db(&lab, &u, &[(None, &ts_ago(3600))], false);
    let (b, _) = ctx_run(&lab, &[], |c| backup_user(c, &info, "0.0.36"));
    let b = b.unwrap();
    fs::write(&db, "migrated").unwrap();
    let unit = format!("t3-serve@{}.service", u.name);
    lab.systemd_with(
        &[(&u.name, true, None)],
        &[
            super::fakecmd::rule(&format!("stop {unit}"), "", 1),
            super::fakecmd::rule(&format!("start {unit}"), "", 1),
        ],
    );
    let (_, lines) = ctx_run(&lab, &[], |c| {
        t3_migrate_idle::restart::recover(c, &info, "0.0.36", "0.0.35", Some(&b))
    });
    assert_eq!(
        lines,
        vec![
            format!("HEALTH-CHECK FAILED: {} pairing broken AFTER restart onto 0.0.36 \u{2014} rolling back + restoring its DB", u.name),
            "rolling back binary 0.0.36 -> 0.0.35".to_string(),
            "rolled back to 0.0.35".to_string(),
            format!("WARN: could not stop {unit} \u{2014} DB restore skipped"),
            format!("WARN: systemctl start {unit} returned non-zero"),
            format!("FROZEN ({}) after {} failed on 0.0.36; last_good stays 0.0.35 \u{2014} investigate, then remove the freeze file to resume", lab.freeze.display(), u.name),
        ]
    );
    assert_eq!(
        fs::read_to_string(&db).unwrap(),
        "migrated",
        "never restored over a running unit"
    );
    assert_eq!(
        calls_changing(&lab),
        vec![
            "npm i -g t3@0.0.35".to_string(),
            format!("systemctl stop {unit}"),
            format!("systemctl start {unit}")
        ]
    );
    assert!(lab.freeze.exists());
}

#[test]
fn recovery_without_backup_or_with_an_unusable_one() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let info = UserInfo::lookup(&u.name).unwrap();
    make_db(&lab, &u, &[], false);
    let unit = format!("t3-serve@{}.service", u.name);
    lab.systemd(&[(&u.name, true, None)]);
    // no backup: WARN, no stop/start, still frozen
    let (_, lines) = ctx_run(&lab, &[], |c| {
        t3_migrate_idle::restart::recover(c, &info, "0.0.36", "0.0.35", None)
    });
    assert!(
        lines.contains(&format!(
            "WARN: no pre-restart backup found for {} \u{2014} DB not restored",
            u.name
        )),
        "{lines:?}"
    );
    assert!(!calls_changing(&lab)
        .iter()
        .any(|c| c.starts_with("systemctl")));
    assert!(lab.freeze.exists());
    // a backup the user cannot read (root-only): restore fails as the user, start still runs
    fs::remove_file(&lab.freeze).unwrap();
    let rootonly = lab.root().join("rootonly.sqlite");
    fs::write(&rootonly, "x").unwrap();
    fs::set_permissions(
        &rootonly,
        <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let (_, lines) = ctx_run(&lab, &[], |c| {
        t3_migrate_idle::restart::recover(c, &info, "0.0.36", "0.0.35", Some(&rootonly))
    });
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("WARN: DB restore failed for {}: ", u.name))),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("restored ")));
    let c = calls_changing(&lab);
    assert_eq!(
        &c[c.len() - 2..],
        &[
            format!("systemctl stop {unit}"),
            format!("systemctl start {unit}")
        ]
    );
    assert!(lab.freeze.exists());
    // an existing freeze file is never truncated
    fs::write(&lab.freeze, "by a human\n").unwrap();
    ctx_run(&lab, &[], |c| {
        t3_migrate_idle::restart::recover(c, &info, "0.0.36", "0.0.35", None)
    });
    assert_eq!(fs::read_to_string(&lab.freeze).unwrap(), "by a human\n");
}
