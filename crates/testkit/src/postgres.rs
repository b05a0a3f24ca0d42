//! A throwaway PostgreSQL cluster: `initdb` into a temp dir, `pg_ctl` on a free loopback port,
//! trust auth. As root (CI), the server runs as the `postgres` system user because `initdb`
//! and `postgres` refuse root.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INSTALL: &str = "apt-get install -y postgresql";

pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    bindir: PathBuf,
    run_as: Option<(u32, u32)>,
    running: bool,
}

fn find_bindir() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    if let Some(b) = candidates
        .into_iter()
        .rev()
        .find(|b| b.join("pg_ctl").is_file())
    {
        return b;
    }
    let p = crate::require_bin("pg_ctl", &[], INSTALL);
    p.parent().expect("pg_ctl has a parent dir").to_path_buf()
}

impl Postgres {
    /// initdb + start; panics with the install command when PostgreSQL is missing.
    pub fn start() -> Self {
        let bindir = find_bindir();
        let run_as = if nix::unistd::geteuid().is_root() {
            let u = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    panic!("running as root needs the `postgres` system user; install it with: {INSTALL}")
                });
            Some((u.uid.as_raw(), u.gid.as_raw()))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("testkit-pg-")
            .tempdir()
            .expect("tempdir");
        if let Some((uid, gid)) = run_as {
            nix::unistd::chown(
                dir.path(),
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .expect("chown pg tempdir");
        }
        let mut pg = Postgres {
            dir,
            port: crate::free_port(),
            bindir,
            run_as,
            running: false,
        };
        let data = pg.data_dir();
        let out = pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_server();
        pg
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(self.bindir.join(tool));
        c.current_dir(self.dir.path());
        c.env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            // std drops root's supplementary groups itself (setgroups(0) before setuid when
            // running as root); a pre_exec hook would run after setuid and fail with EPERM.
            c.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        c
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        self.cmd(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("could not run {tool}: {e}; install with: {INSTALL}"))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Start (or restart after [`Postgres::stop`]) the server on the same port and data.
    pub fn start_server(&mut self) {
        let data = self.data_dir();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-l",
                log.to_str().expect("utf-8"),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stop the server (fast shutdown), keeping the data for a later restart.
    pub fn stop(&mut self) {
        self.stop_mode("immediate");
    }

    /// Stop with `pg_ctl stop -m <mode>` (`smart`, `fast`, `immediate`). `fast` disconnects
    /// clients and checkpoints, so commits acknowledged under `synchronous_commit=off` survive
    /// the restart; `immediate` is a crash.
    pub fn stop_mode(&mut self, mode: &str) {
        if !self.running {
            return;
        }
        let data = self.data_dir();
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        );
        self.running = false;
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    /// Key/value DSN for the superuser and `db`.
    pub fn dsn(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db}",
            self.port
        )
    }
    /// URL DSN for the superuser and `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run SQL through `psql -At` against `db`; panics on error. Returns stdout.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.try_psql(db, sql);
        match out {
            Ok(s) => s,
            Err(e) => panic!("psql failed: {e}\nSQL: {sql}"),
        }
    }

    /// As [`Postgres::psql`] but returns stderr as the error.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        let out = self
            .cmd("psql")
            .args([
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `CREATE DATABASE name`.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
