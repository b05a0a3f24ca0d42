//! The safe-restart routine (§7; parity with `t3-safe-restart.sh`): pre-restart backup as the
//! user, restart, pairing verification through the real t3-dispatch, and on failure the
//! recovery in the fixed order R4 → binary rollback → stop → restore → start → freeze → R9.
//! Self-contained so it can move to `homelab-core` when t3-autoupdate/t3-watchdog are ported.

use crate::asuser::{self, UserInfo};
use crate::config::Config;
use crate::decide;
use crate::report::{self as rp, Log};
use crate::sys::{Commands, World};
use homelab_core::http::{Client, HttpConfig, Redirects};
use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const VERIFY_ATTEMPTS: u32 = 15;
pub const VERIFY_SLEEP: Duration = Duration::from_secs(2);
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the routine needs from its caller.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub log: &'a Log,
    pub world: &'a dyn World,
    pub cmds: &'a Commands,
}

/// Local time `YYYYmmdd-HHMMSS` (§7.1).
pub fn backup_stamp(now: time::OffsetDateTime) -> String {
    let t = now.to_offset(homelab_core::log::local_offset_at(now.unix_timestamp()));
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `<BACKUP_DIR>/<u>` owned `<u>:<u>` mode 0700, enforced even when it exists; never follows
/// a symlink there.
pub fn ensure_backup_dir(backup_dir: &Path, user: &UserInfo) -> Result<PathBuf, String> {
    fs::create_dir_all(backup_dir).map_err(|e| format!("create {}: {e}", backup_dir.display()))?;
    let dir = backup_dir.join(&user.name);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("create {}: {e}", dir.display())),
    }
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&dir)
        .map_err(|e| format!("{} is not a plain directory: {e}", dir.display()))?;
    let fd = f.as_raw_fd();
    // SAFETY: fchown/fchmod on a descriptor we own.
    let rc = unsafe { libc::fchown(fd, user.uid, user.own_group) };
    if rc != 0 {
        return Err(format!(
            "chown {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: as above.
    let rc = unsafe { libc::fchmod(fd, 0o700) };
    if rc != 0 {
        return Err(format!(
            "chmod {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(dir)
}

/// §7.1 `backup_user`: Ok(path of the new backup) or Err(reason); a partial file is deleted.
pub fn backup_user(ctx: &Ctx, user: &UserInfo, target: &str) -> Result<PathBuf, String> {
    let db = ctx.cfg.db_path(&user.name);
    match fs::metadata(&db) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(format!("{} is not a regular file", db.display())),
        Err(e) => return Err(format!("{}: {e}", db.display())),
    }
    let dir = ensure_backup_dir(&ctx.cfg.backup_dir, user)?;
    let dest = dir.join(format!(
        "state-prebump-{target}-{}.sqlite",
        backup_stamp(ctx.world.now())
    ));
    if fs::symlink_metadata(&dest).is_ok() {
        // Never overwrite (or, on failure, delete) a backup that is already there.
        return Err(format!("{} already exists", dest.display()));
    }
    let r = asuser::run_as(
        &ctx.cfg.helper_exe,
        user,
        &["backup".as_ref(), db.as_os_str(), dest.as_os_str()],
        ctx.cfg.backup_timeout,
    );
    let ok_file = fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file() && m.len() > 0);
    match r {
        Ok(_) if ok_file => Ok(dest),
        Ok(_) => {
            remove_partial(&dest);
            Err(format!("{} is missing or empty", dest.display()))
        }
        Err(e) => {
            remove_partial(&dest);
            Err(e)
        }
    }
}

/// Delete a failed backup and what SQLite may have left beside it (a killed `VACUUM INTO`
/// leaves `<dest>-journal`).
fn remove_partial(dest: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = dest.as_os_str().to_owned();
        p.push(suffix);
        let _ = fs::remove_file(PathBuf::from(p));
    }
}

/// §7.3: Ok(()) when the dispatch minted `t3_session` for the user (or no mapping: R2).
pub fn verify_pairing(ctx: &Ctx, u: &str) -> bool {
    let map = fs::read_to_string(&ctx.cfg.user_map).unwrap_or_default();
    let Some(ak) = decide::authentik_name(&map, u) else {
        ctx.log.line(&rp::r2(u));
        return true;
    };
    let client = Client::new(&HttpConfig {
        connect_timeout: VERIFY_TIMEOUT,
        total_timeout: VERIFY_TIMEOUT,
        redirects: Redirects::Never,
        max_body: 1024 * 1024,
        ..HttpConfig::default()
    })
    .ok();
    let url = format!("http://{}/", ctx.cfg.dispatch);
    for _ in 0..VERIFY_ATTEMPTS {
        let ok = client.as_ref().is_some_and(|c| {
            c.request(
                "GET",
                &url,
                &[
                    ("X-authentik-username", ak.as_str()),
                    ("Sec-Fetch-Dest", "document"),
                ],
                None,
            )
            .is_ok_and(|r| {
                r.headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("set-cookie") && decide::is_t3_session_cookie(v)
                })
            })
        });
        if ok {
            return true;
        }
        ctx.world.sleep(VERIFY_SLEEP);
    }
    false
}

/// §7.2-§7.4: restart, verify, recover on failure. true = verified.
pub fn safe_restart_unit(
    ctx: &Ctx,
    user: &UserInfo,
    target: &str,
    last_good: &str,
    backup: Option<&Path>,
) -> bool {
    let u = user.name.as_str();
    let unit = rp::unit(u);
    if !ctx.cmds.systemctl(&["restart", &unit], false).success() {
        ctx.log.line(&rp::r1(u));
    }
    if verify_pairing(ctx, u) {
        ctx.log.line(&rp::r3(u, target));
        return true;
    }
    recover(ctx, user, target, last_good, backup);
    false
}

/// §7.4 a-f.
pub fn recover(ctx: &Ctx, user: &UserInfo, target: &str, last_good: &str, backup: Option<&Path>) {
    let u = user.name.as_str();
    let unit = rp::unit(u);
    ctx.log.line(&rp::r4(u, target));
    // b. binary rollback
    if decide::valid_version(last_good) {
        ctx.log.line(&rp::r5(target, last_good));
        if ctx.cmds.npm_install(last_good) {
            ctx.log.line(&rp::r6(last_good));
        } else {
            ctx.log.line(&rp::r7(last_good));
        }
    } else {
        ctx.log.line(rp::NO_LAST_GOOD);
    }
    // c/d. restore the DB from this pass's backup, as the user
    match backup.filter(|b| b.is_file()) {
        None => ctx.log.line(&rp::no_backup(u)),
        Some(src) => {
            if ctx.cmds.systemctl(&["stop", &unit], false).success() {
                let db = ctx.cfg.db_path(u);
                match asuser::run_as(
                    &ctx.cfg.helper_exe,
                    user,
                    &["restore".as_ref(), src.as_os_str(), db.as_os_str()],
                    ctx.cfg.backup_timeout,
                ) {
                    Ok(_) => ctx.log.line(&rp::r8(u, src)),
                    Err(e) => ctx.log.line(&rp::restore_failed(u, &e)),
                }
            } else {
                ctx.log.line(&rp::stop_failed(u));
            }
            if !ctx.cmds.systemctl(&["start", &unit], false).success() {
                ctx.log.line(&rp::start_failed(u));
            }
        }
    }
    // e. freeze (never truncate an existing one)
    create_freeze(ctx);
    // f.
    ctx.log
        .line(&rp::r9(&ctx.cfg.freeze_file, u, target, last_good));
}

fn create_freeze(ctx: &Ctx) {
    let p = &ctx.cfg.freeze_file;
    if fs::symlink_metadata(p).is_ok() {
        return;
    }
    let r = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p);
    match r {
        Ok(f) => {
            use std::os::unix::fs::PermissionsExt;
            let _ = f.set_permissions(fs::Permissions::from_mode(0o644));
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => ctx.log.line(&rp::freeze_create_failed(p, &e.to_string())),
    }
}
