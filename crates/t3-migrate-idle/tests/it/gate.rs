//! §5 idle gate against real SQLite files read as a throwaway user (§9.1 #7-#10, §9.2.2,
//! §9.2.4, §8 "DB missing, locked, busy, corrupt, not a DB, wrong schema, unreadable").

use super::common::*;
use rusqlite::Connection;
use std::fs;
use std::time::{Duration, Instant};
use t3_migrate_idle::asuser::{read_gate, UserInfo};
use t3_migrate_idle::decide::{verdict, Verdict};
use time::OffsetDateTime;

fn read(lab: &Lab, u: &TestUser) -> Result<t3_migrate_idle::decide::Reading, String> {
    let info = UserInfo::lookup(&u.name).unwrap();
    read_gate(
        BIN.as_ref(),
        &info,
        &lab.db_path(&u.name),
        Duration::from_secs(30),
    )
}

#[test]
fn original_fixture_cases_7_to_10() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let (now, old) = (ts_ago(0), ts_ago(3600));
    // #7
    make_db(&lab, &u, &[(Some("abc"), &now), (None, &old)], false);
    let r = read(&lab, &u).unwrap();
    assert_eq!(r.active, 1, "#7");
    assert!(!verdict(Ok(&r), OffsetDateTime::now_utc(), 900).is_safe());
    // #8, #9
    fs::remove_dir_all(lab.home.join(&u.name)).unwrap();
    make_db(&lab, &u, &[(None, &old), (None, &old)], false);
    let r = read(&lab, &u).unwrap();
    assert_eq!(r.active, 0, "#8");
    match verdict(Ok(&r), OffsetDateTime::now_utc(), 900) {
        Verdict::Safe { idle: Some(i) } => assert!(i >= 3500, "#9 idle {i}"),
        v => panic!("#9: {v:?}"),
    }
    // #10
    fs::remove_dir_all(lab.home.join(&u.name)).unwrap();
    make_db(&lab, &u, &[], false);
    let r = read(&lab, &u).unwrap();
    assert_eq!((r.rows, r.active, r.latest.clone()), (0, 0, None), "#10");
    assert_eq!(
        verdict(Ok(&r), OffsetDateTime::now_utc(), 900),
        Verdict::Safe { idle: None }
    );
}

#[test]
fn empty_turn_id_is_active_and_garbage_timestamp_is_not_safe() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    make_db(&lab, &u, &[(Some(""), &ts_ago(5000))], false);
    assert_eq!(read(&lab, &u).unwrap().active, 1);
    fs::remove_dir_all(lab.home.join(&u.name)).unwrap();
    make_db(&lab, &u, &[(None, "garbage")], false);
    let r = read(&lab, &u).unwrap();
    assert!(matches!(
        verdict(Ok(&r), OffsetDateTime::now_utc(), 900),
        Verdict::Error(_)
    ));
    // future timestamp: clock skew → not safe
    fs::remove_dir_all(lab.home.join(&u.name)).unwrap();
    make_db(&lab, &u, &[(None, &ts_ago(-600))], false);
    let r = read(&lab, &u).unwrap();
    assert!(matches!(
        verdict(Ok(&r), OffsetDateTime::now_utc(), 900),
        Verdict::Error(_)
    ));
}

#[test]
fn wal_db_with_an_open_writer_is_read_and_stays_the_users() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let db = make_db(&lab, &u, &[(None, &ts_ago(3600))], true);
    // A writer (as root, like a live server would be as the user) holds an open transaction
    // with an uncommitted active turn: the reader sees the committed state.
    let w = Connection::open(&db).unwrap();
    w.execute_batch("INSERT INTO projection_thread_sessions VALUES ('x','committed-turn','2026-01-01T00:00:00.000Z')")
        .unwrap();
    chown_tree(&lab.home.join(&u.name), &u);
    w.execute_batch("BEGIN IMMEDIATE; INSERT INTO projection_thread_sessions VALUES ('y','uncommitted','2026-01-01T00:00:00.000Z');")
        .unwrap();
    let r = read(&lab, &u).unwrap();
    assert_eq!((r.rows, r.active), (2, 1), "{r:?}");
    w.execute_batch("ROLLBACK").unwrap();
    drop(w);
    for p in walk(&lab.home.join(&u.name)) {
        assert_eq!(owner(&p), u.uid, "{} written by another user", p.display());
    }
}

#[test]
fn unreadable_inputs_are_not_safe_within_35s() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let db = lab.db_path(&u.name);
    let t0 = Instant::now();
    // missing DB
    assert!(read(&lab, &u).is_err(), "missing DB");
    // missing table
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE other(x)")
        .unwrap();
    chown_tree(&lab.home.join(&u.name), &u);
    let e = read(&lab, &u).unwrap_err();
    assert!(e.contains("no such table"), "{e}");
    // not an SQLite file
    fs::write(&db, vec![b'x'; 4096]).unwrap();
    chown_tree(&lab.home.join(&u.name), &u);
    assert!(read(&lab, &u).is_err(), "not a DB");
    // a directory where the DB should be
    fs::remove_file(&db).unwrap();
    fs::create_dir(&db).unwrap();
    assert!(read(&lab, &u).is_err(), "directory");
    fs::remove_dir(&db).unwrap();
    // unreadable for the user (root-owned 0600): proves the read runs as the user
    make_db(&lab, &u, &[(None, &ts_ago(3600))], false);
    std::os::unix::fs::chown(&db, Some(0), Some(0)).unwrap();
    let e = read(&lab, &u).unwrap_err();
    assert!(
        e.contains("unable to open") || e.contains("ermission") || e.contains("readonly"),
        "{e}"
    );
    std::os::unix::fs::chown(&db, Some(u.uid), Some(u.gid)).unwrap();
    assert!(read(&lab, &u).is_ok());
    assert!(t0.elapsed() < Duration::from_secs(35));
}

#[test]
fn exclusive_lock_is_not_safe_within_35s() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let db = make_db(&lab, &u, &[(None, &ts_ago(3600))], false);
    let c = Connection::open(&db).unwrap();
    c.execute_batch("PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE projection_thread_sessions SET updated_at=updated_at;")
        .unwrap();
    chown_tree(&lab.home.join(&u.name), &u);
    let t0 = Instant::now();
    let e = read(&lab, &u).unwrap_err();
    assert!(e.contains("locked") || e.contains("busy"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(35), "{:?}", t0.elapsed());
    c.execute_batch("COMMIT").unwrap();
}

#[test]
fn symlinked_db_is_followed_as_the_user() {
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let db = make_db(&lab, &u, &[(None, &ts_ago(3600))], false);
    let real = db.with_file_name("real.sqlite");
    fs::rename(&db, &real).unwrap();
    std::os::unix::fs::symlink(&real, &db).unwrap();
    assert_eq!(read(&lab, &u).unwrap().rows, 1);
    // a symlink to a root-only file is not readable as the user
    let secret = lab.root().join("root-only.sqlite");
    fs::copy(&real, &secret).unwrap();
    fs::set_permissions(
        &secret,
        <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    fs::remove_file(&db).unwrap();
    std::os::unix::fs::symlink(&secret, &db).unwrap();
    assert!(read(&lab, &u).is_err());
}

#[test]
fn corrupt_sqlite_pages_are_not_safe() {
    // A real SQLite header with garbage b-tree pages behind it: "malformed", never a verdict.
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let rows: Vec<String> = (0..2000).map(|i| ts_ago(3600 + i)).collect();
    let rows: Vec<(Option<&str>, &str)> = rows.iter().map(|t| (None, t.as_str())).collect();
    let db = make_db(&lab, &u, &rows, false);
    let mut bytes = fs::read(&db).unwrap();
    assert!(bytes.len() > 8192 && bytes.starts_with(b"SQLite format 3\0"));
    for b in bytes[4096..].iter_mut() {
        *b = 0xA5;
    }
    fs::write(&db, &bytes).unwrap();
    chown_tree(&lab.home.join(&u.name), &u);
    let e = read(&lab, &u).unwrap_err();
    assert!(
        e.contains("malformed") || e.contains("not a database") || e.contains("corrupt"),
        "{e}"
    );
    assert!(matches!(
        verdict(Err(&e), OffsetDateTime::now_utc(), 900),
        Verdict::Error(_)
    ));
}

#[test]
fn the_child_carries_the_users_supplementary_groups_and_nothing_of_roots() {
    // DB owned root:<extra group> 0640: readable only through a supplementary group of the user.
    let lab = Lab::new();
    let u = TestUser::create(&lab.home);
    let g = format!("{}g", u.name);
    let ok = std::process::Command::new("/usr/sbin/groupadd")
        .args(["--system", &g])
        .status()
        .unwrap()
        .success();
    assert!(ok, "groupadd {g}");
    struct DelGroup(String);
    impl Drop for DelGroup {
        fn drop(&mut self) {
            let _ = std::process::Command::new("/usr/sbin/groupdel")
                .arg(&self.0)
                .status();
        }
    }
    let _del = DelGroup(g.clone());
    assert!(std::process::Command::new("/usr/sbin/usermod")
        .args(["-aG", &g, &u.name])
        .status()
        .unwrap()
        .success());
    let gid = nix::unistd::Group::from_name(&g)
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    let db = make_db(&lab, &u, &[(None, &ts_ago(3600))], false);
    std::os::unix::fs::chown(&db, Some(0), Some(gid)).unwrap();
    fs::set_permissions(
        &db,
        <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o640),
    )
    .unwrap();
    // read-only open of a rollback-journal DB needs no write access
    assert_eq!(read(&lab, &u).unwrap().rows, 1);
    // and root's own groups are gone: a root-group-only file stays unreadable
    std::os::unix::fs::chown(&db, Some(0), Some(0)).unwrap();
    assert!(read(&lab, &u).is_err());
}
