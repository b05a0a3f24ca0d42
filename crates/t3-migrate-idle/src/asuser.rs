//! Work done as the DB owner (§5.2, §7.1, §7.4d): the parent forks, drops privileges in the
//! child before exec (supplementary groups of `<u>`, then gid, then uid; fails if root could
//! be regained; umask 077) and re-executes this binary's hidden `__as-user` subcommand, which
//! talks back through a pipe. Only async-signal-safe syscalls run between fork and exec, so
//! the parent may have threads. The parent kills the child on expiry.

use crate::decide::Reading;
use crate::sys::{self, Status};
use nix::unistd::{Group, User};
use rusqlite::{types::ValueRef, Connection, OpenFlags};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An OS user from passwd (§4 6c).
#[derive(Debug, Clone)]
pub struct UserInfo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// gid of the group named like the user (backup dir), else the primary gid.
    pub own_group: u32,
}

impl UserInfo {
    /// Look `name` up; Err(reason) when missing or uid 0.
    pub fn lookup(name: &str) -> Result<UserInfo, String> {
        let u = match User::from_name(name) {
            Ok(Some(u)) => u,
            Ok(None) => return Err("no such user".into()),
            Err(e) => return Err(format!("user lookup failed: {e}")),
        };
        if u.uid.is_root() {
            return Err("uid 0 is never migrated".into());
        }
        let cname = std::ffi::CString::new(name).map_err(|_| "invalid user name".to_string())?;
        let groups = nix::unistd::getgrouplist(&cname, u.gid)
            .map_err(|e| format!("cannot list groups: {e}"))?
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        let own_group = match Group::from_name(name) {
            Ok(Some(g)) => g.gid.as_raw(),
            _ => u.gid.as_raw(),
        };
        Ok(UserInfo {
            name: name.to_string(),
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            groups,
            own_group,
        })
    }
}

/// Run `__as-user <args>` as `user`, bounded by `timeout`. Ok(stdout) or Err(one-line reason).
pub fn run_as(
    exe: &Path,
    user: &UserInfo,
    args: &[&std::ffi::OsStr],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new(exe);
    cmd.arg("__as-user").args(args).env_clear().current_dir("/");
    let (uid, gid) = (user.uid, user.gid);
    let groups: Vec<libc::gid_t> = user.groups.clone();
    // SAFETY: only async-signal-safe syscalls in the forked child; the vector was allocated
    // before the fork and is only read.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setuid(0) == 0 || libc::geteuid() == 0 || libc::getegid() == 0 && gid != 0 {
                return Err(std::io::Error::from_raw_os_error(libc::EPERM));
            }
            libc::umask(0o077);
            Ok(())
        });
    }
    let out = sys::run(cmd, timeout, true);
    match out.status {
        Status::Exited(0) => Ok(out.stdout),
        Status::TimedOut => Err(format!("timed out after {}s", timeout.as_secs())),
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            match err.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(l) => Err(child_reason(l.trim())),
                None => Err(out.reason()),
            }
        }
    }
}

/// §5: the gate reading of `db` for `user`.
pub fn read_gate(
    exe: &Path,
    user: &UserInfo,
    db: &Path,
    timeout: Duration,
) -> Result<Reading, String> {
    match fs::metadata(db) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(format!("{} is not a regular file", db.display())),
        Err(e) => return Err(format!("{}: {e}", db.display())),
    }
    let out = run_as(exe, user, &["read".as_ref(), db.as_os_str()], timeout)?;
    // serde's message can quote the answer: name only where it broke (issue 15 item 2).
    serde_json::from_slice(&out).map_err(|e| {
        format!(
            "unreadable gate answer ({} at line {} column {})",
            crate::decide::outside(&out),
            e.line(),
            e.column()
        )
    })
}

// ---- child side (already running as the user) ----

/// The hidden subcommand's entry: prints the result or one error line on stderr (exit 1).
pub fn child_main(op: &crate::cli::UserOp) -> i32 {
    use crate::cli::UserOp;
    let r = match op {
        UserOp::Read { db } => child_read(db).and_then(|r| {
            let s = serde_json::to_string(&r).map_err(|e| e.to_string())?;
            let mut o = std::io::stdout().lock();
            o.write_all(s.as_bytes())
                .and_then(|_| o.flush())
                .map_err(|e| e.to_string())
        }),
        UserOp::Backup { db, dest } => child_backup(db, dest),
        UserOp::Restore { src, db } => child_restore(src, db),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// Issue 15 item 2: SQLite's own messages can quote schema object names the user chose
/// ("malformed database schema (<name>)"), so the child reports a fixed text per error code.
fn sql_err(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => match f.code {
            C::DatabaseBusy => "database is busy".into(),
            C::DatabaseLocked => "database is locked".into(),
            C::DatabaseCorrupt => "database disk image is malformed".into(),
            C::NotADatabase => "file is not a database".into(),
            C::CannotOpen => "unable to open database file".into(),
            C::PermissionDenied => "permission denied".into(),
            C::ReadOnly => "readonly database".into(),
            _ if msg
                .as_deref()
                .is_some_and(|m| m.starts_with("no such table")) =>
            {
                "no such table projection_thread_sessions".into()
            }
            _ => format!("sqlite error code {}", f.extended_code),
        },
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::IntegralValueOutOfRange(..) => {
            "unexpected value type in projection_thread_sessions".into()
        }
        _ => "sqlite client error".into(),
    }
}

/// The child's one stderr line, accepted as it is only when it cannot spell an alert (our
/// fixed texts, config paths, validated names, OS error texts); anything else is projected.
pub fn child_reason(line: &str) -> String {
    let plain = line.len() <= 300
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _./:()'-,".contains(&b));
    if plain && !crate::report::ALERT_WORDS.iter().any(|w| line.contains(w)) {
        line.to_string()
    } else {
        crate::decide::outside(line.as_bytes())
    }
}

/// §5.2/§5.3: read-only open (no create, never `immutable`), busy timeout 2 s.
pub fn child_read(db: &Path) -> Result<Reading, String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags)
        .map_err(|e| format!("open {}: {}", db.display(), sql_err(&e)))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| sql_err(&e))?;
    // One sequential scan: a small page cache is enough and saves page faults (and RSS).
    conn.pragma_update(None, "cache_size", -256)
        .map_err(|e| format!("open {}: {}", db.display(), sql_err(&e)))?;
    conn.query_row(
        "SELECT count(*), count(active_turn_id), max(updated_at) FROM projection_thread_sessions",
        [],
        |row| {
            let latest = match row.get_ref(2)? {
                ValueRef::Null => None,
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Some(String::from_utf8_lossy(t).into_owned())
                }
                ValueRef::Integer(i) => Some(i.to_string()),
                ValueRef::Real(f) => Some(f.to_string()),
            };
            Ok(Reading {
                rows: row.get(0)?,
                active: row.get(1)?,
                latest,
            })
        },
    )
    .map_err(|e| format!("query {}: {}", db.display(), sql_err(&e)))
}

/// §7.1: open the live DB normally (WAL/-shm stay the user's) and `VACUUM INTO ?1`.
pub fn child_backup(db: &Path, dest: &Path) -> Result<(), String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags)
        .map_err(|e| format!("open {}: {}", db.display(), sql_err(&e)))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| sql_err(&e))?;
    let d = dest.to_str().ok_or("destination path is not UTF-8")?;
    let r = conn.execute("VACUUM INTO ?1", [d]).map(|_| ());
    if let Err(e) = r {
        let _ = fs::remove_file(dest);
        return Err(format!("VACUUM INTO failed: {}", sql_err(&e)));
    }
    Ok(())
}

/// §7.4d: temp file in the userdata dir, fsync, rename over `state.sqlite` (a symlink there
/// is replaced, never followed), then delete `-wal`/`-shm`.
pub fn child_restore(src: &Path, db: &Path) -> Result<(), String> {
    let dir = db.parent().ok_or("database path has no directory")?;
    let mut input = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(src)
        .map_err(|e| format!("open {}: {e}", src.display()))?;
    let tmp: PathBuf = dir.join(format!(".state.sqlite.restore.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let res = (|| -> std::io::Result<()> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
        }
        out.sync_all()?;
        drop(out);
        fs::rename(&tmp, db)?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(format!("restore into {}: {e}", db.display()));
    }
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match fs::remove_file(PathBuf::from(p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("delete {suffix}: {e}")),
        }
    }
    let _ = homelab_core::fsx::sync_dir(dir);
    Ok(())
}
