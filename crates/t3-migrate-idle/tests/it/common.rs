//! Shared fixtures: a scratch "host" (marker dir, state dir, backups, homes, freeze file,
//! lock, user map, fakes on PATH), throwaway system users, real SQLite DBs, a fake clock.

use super::fakecmd::{rule, Fakes, Rule};
use clap::Parser;
use rusqlite::Connection;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use t3_migrate_idle::cli::Cli;
use t3_migrate_idle::config::Config;
use t3_migrate_idle::sys::World;
use time::OffsetDateTime;

pub const BIN: &str = env!("CARGO_BIN_EXE_t3-migrate-idle");

static USER_LOCK: Mutex<()> = Mutex::new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A system user created for one test and removed on drop (also when the test panics).
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    pub fn create(home_root: &Path) -> TestUser {
        testkit::require_bin(
            "useradd",
            &["/usr/sbin/useradd"],
            "apt-get install -y passwd",
        );
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("t3mi{}x{n}", std::process::id());
        let _g = USER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = String::new();
        for _ in 0..20 {
            let out = Command::new("/usr/sbin/useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--user-group",
                    "--home-dir",
                ])
                .arg(home_root.join(&name))
                .arg(&name)
                .output()
                .expect("run useradd");
            if out.status.success() {
                let u = nix::unistd::User::from_name(&name)
                    .unwrap()
                    .expect("user exists");
                return TestUser {
                    name,
                    uid: u.uid.as_raw(),
                    gid: u.gid.as_raw(),
                };
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("useradd {name} failed: {last}");
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _g = USER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..20 {
            let ok = Command::new("/usr/sbin/userdel")
                .arg(&self.name)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("/usr/sbin/groupdel").arg(&self.name).output();
    }
}

/// Clock at real "now" (or fixed), sleeps recorded but not slept.
pub struct FakeWorld {
    pub now: Option<OffsetDateTime>,
    pub sleeps: Mutex<Vec<Duration>>,
}

impl FakeWorld {
    pub fn new() -> FakeWorld {
        FakeWorld {
            now: None,
            sleeps: Mutex::new(Vec::new()),
        }
    }
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

impl World for FakeWorld {
    fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
    }
    fn sleep(&self, d: Duration) {
        self.sleeps.lock().unwrap().push(d);
    }
}

/// A scratch host.
pub struct Lab {
    pub tmp: tempfile::TempDir,
    pub defer: PathBuf,
    pub state: PathBuf,
    pub backups: PathBuf,
    pub home: PathBuf,
    pub freeze: PathBuf,
    pub lock: PathBuf,
    pub user_map: PathBuf,
    pub last_good: PathBuf,
    pub fakes: Fakes,
}

impl Lab {
    pub fn new() -> Lab {
        let tmp = tempfile::Builder::new().prefix("t3mi-").tempdir().unwrap();
        let r = tmp.path().to_path_buf();
        fs::set_permissions(&r, fs::Permissions::from_mode(0o755)).unwrap();
        let lab = Lab {
            defer: r.join("state/deferred"),
            state: r.join("state"),
            backups: r.join("backups"),
            home: r.join("home"),
            freeze: r.join("etc/t3-autoupdate.freeze"),
            lock: r.join("run/t3-migrate-idle.lock"),
            user_map: r.join("etc/ttyd-user-map"),
            last_good: r.join("state/last-good"),
            fakes: Fakes::new(&r.join("fakebin")),
            tmp,
        };
        for d in [&lab.defer, &lab.home, &r.join("etc")] {
            fs::create_dir_all(d).unwrap();
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        lab.systemd(&[]);
        lab.t3(Some("0.0.35"));
        lab.npm(0);
        lab
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Flags pointing everything into the lab.
    pub fn args(&self) -> Vec<String> {
        let p = |x: &Path| x.display().to_string();
        vec![
            "--freeze-file".into(),
            p(&self.freeze),
            "--state-dir".into(),
            p(&self.state),
            "--backup-dest".into(),
            p(&self.backups),
            "--user-map".into(),
            p(&self.user_map),
            "--home-root".into(),
            p(&self.home),
            "--lock-file".into(),
            p(&self.lock),
            "--syslog-socket".into(),
            p(&self.root().join("no-syslog")),
        ]
    }

    pub fn cfg(&self, extra: &[&str]) -> Config {
        let mut a = vec!["t3-migrate-idle".to_string()];
        a.extend(self.args());
        a.extend(extra.iter().map(|s| s.to_string()));
        let cli = Cli::try_parse_from(a).unwrap();
        let mut c = Config::from_cli(&cli, &|_| None).unwrap();
        c.path = Some(self.fakes.path().into());
        c.helper_exe = PathBuf::from(BIN);
        c
    }

    /// Write a marker; `age` seconds old (mtime).
    pub fn marker(&self, name: &str, content: &str, mtime: i64) -> PathBuf {
        let p = self.defer.join(name);
        fs::write(&p, content).unwrap();
        set_mtime(&p, mtime);
        p
    }

    /// The systemctl fake: (user, active, start epoch) per unit; siblings inactive.
    pub fn systemd(&self, units: &[(&str, bool, Option<i64>)]) {
        self.systemd_with(units, &[]);
    }

    pub fn systemd_with(&self, units: &[(&str, bool, Option<i64>)], extra: &[Rule]) {
        let mut rules: Vec<Rule> = extra.to_vec();
        for sib in ["t3-autoupdate.service", "t3-watchdog.service"] {
            rules.push(sibling_rule(sib, "oneshot", "inactive", "dead"));
        }
        for (u, active, start) in units {
            let unit = format!("t3-serve@{u}.service");
            rules.push(rule(
                &format!("is-active --quiet {unit}"),
                "",
                if *active { 0 } else { 3 },
            ));
            let st = start.map(|s| format!("@{s}")).unwrap_or_default();
            rules.push(rule(
                &format!("show -p ActiveEnterTimestamp --value --timestamp=unix {unit}"),
                &st,
                0,
            ));
            rules.push(rule(
                &format!("show -p ActiveEnterTimestamp --value {unit}"),
                "",
                0,
            ));
        }
        rules.push(rule("is-active --quiet *", "", 3));
        self.fakes.script("systemctl", &rules, 0);
    }

    pub fn t3(&self, version: Option<&str>) {
        match version {
            Some(v) => self
                .fakes
                .script("t3", &[rule("--version", &format!("t3 v{v}"), 0)], 1),
            None => self.fakes.script("t3", &[], 1),
        }
    }

    pub fn npm(&self, code: i32) {
        self.fakes.script("npm", &[], code);
    }

    pub fn map(&self, text: &str) {
        fs::write(&self.user_map, text).unwrap();
    }

    pub fn db_path(&self, u: &str) -> PathBuf {
        self.home.join(u).join(".t3/userdata/state.sqlite")
    }
}

/// The recording fake's answer to `systemctl show -p Type,ActiveState,SubState <sib>`
/// (systemctl prints the properties as `key=value` lines).
pub fn sibling_rule(sib: &str, ty: &str, active: &str, sub: &str) -> Rule {
    rule(
        &format!("show -p Type,ActiveState,SubState {sib}"),
        &format!("Type={ty}\nActiveState={active}\nSubState={sub}"),
        0,
    )
}

pub fn set_mtime(p: &Path, epoch: i64) {
    let f = fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(epoch as u64))
        .unwrap();
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `YYYY-MM-DDTHH:MM:SS.000Z`, `secs_ago` seconds ago.
pub fn ts_ago(secs_ago: i64) -> String {
    let t = OffsetDateTime::now_utc() - time::Duration::seconds(secs_ago);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Create `<home>/<u>/.t3/userdata/state.sqlite` with t3's table and rows, owned by the user
/// (dirs 0700, file 0600). `wal` switches the journal mode.
pub fn make_db(lab: &Lab, u: &TestUser, rows: &[(Option<&str>, &str)], wal: bool) -> PathBuf {
    let db = lab.db_path(&u.name);
    let dir = db.parent().unwrap().to_path_buf();
    fs::create_dir_all(&dir).unwrap();
    {
        let c = Connection::open(&db).unwrap();
        if wal {
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
        }
        c.execute_batch("CREATE TABLE projection_thread_sessions(thread_id TEXT, active_turn_id TEXT, updated_at TEXT NOT NULL)")
            .unwrap();
        c.execute_batch("BEGIN").unwrap();
        for (i, (a, t)) in rows.iter().enumerate() {
            c.execute(
                "INSERT INTO projection_thread_sessions VALUES (?1, ?2, ?3)",
                rusqlite::params![format!("th{i}"), a, t],
            )
            .unwrap();
        }
        c.execute_batch("COMMIT").unwrap();
    }
    chown_tree(&lab.home.join(&u.name), u);
    db
}

/// chown -R to the user; dirs 0700, files 0600.
pub fn chown_tree(p: &Path, u: &TestUser) {
    let m = fs::symlink_metadata(p).unwrap();
    std::os::unix::fs::lchown(p, Some(u.uid), Some(u.gid)).unwrap();
    if m.is_dir() {
        fs::set_permissions(p, fs::Permissions::from_mode(0o700)).unwrap();
        for e in fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), u);
        }
    } else if m.is_file() {
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Owner uid of a path (not following symlinks).
pub fn owner(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(p).unwrap().uid()
}

pub fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every path under `p` (recursive), `p` included.
pub fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false) {
        for e in fs::read_dir(p).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}
