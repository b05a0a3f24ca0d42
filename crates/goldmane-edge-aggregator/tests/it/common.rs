//! Shared harness: PKI files, Postgres, the aggregator process with its stderr captured.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
pub use testkit::goldmane::{
    bucket_start, flow, flow_full, Connection, Endpoint, FakeGoldmane, FlowResult, GoldmanePki,
    ListFaults, ServerTls,
};
pub use testkit::Postgres;

/// Password put into every DSN; with trust auth the server never asks for it, so it only
/// proves the binary never prints it (spec 2.1.3, 12.3 #18).
pub const PW: &str = "Pw-n0t-in-0utput-7f3";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One test's world: PKI files on disk, optional Postgres, the fake Goldmane.
pub struct World {
    pub pki: GoldmanePki,
    pub dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub pg: Option<Postgres>,
    pub fake: FakeGoldmane,
}

impl World {
    pub fn new(with_pg: bool) -> World {
        let pki = GoldmanePki::generate();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pki.client.write(dir.path(), "client");
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, &pki.ca.cert_pem).unwrap();
        let pg = with_pg.then(|| {
            let pg = Postgres::start();
            pg.create_db("goldmane_edges");
            pg
        });
        let fake = FakeGoldmane::start(&pki);
        World {
            pki,
            dir,
            cert,
            key,
            ca,
            pg,
            fake,
        }
    }

    pub fn pg(&self) -> &Postgres {
        self.pg.as_ref().expect("world has postgres")
    }

    pub fn dsn(&self) -> String {
        let port = self.pg.as_ref().map_or(1, |p| p.port());
        format!("postgres://postgres:{PW}@127.0.0.1:{port}/goldmane_edges")
    }

    /// The env of a normal test run (flush 1 s, stall 2 s, backoff max 2 s, health on).
    pub fn env(&self) -> HashMap<String, String> {
        let mut e = HashMap::new();
        let mut set = |k: &str, v: String| {
            e.insert(k.to_string(), v);
        };
        set("GOLDMANE_HOST", self.fake.addr());
        set("GOLDMANE_SERVER_NAME", "localhost".into());
        set("GOLDMANE_CLIENT_CERT", self.cert.display().to_string());
        set("GOLDMANE_CLIENT_KEY", self.key.display().to_string());
        set("GOLDMANE_CA", self.ca.display().to_string());
        set("DATABASE_URL", self.dsn());
        set("GEA_FLUSH_INTERVAL_SECS", "1".into());
        set("GEA_STALL_TIMEOUT_SECS", "2".into());
        set("GEA_BACKOFF_MAX_SECS", "2".into());
        set(
            "GEA_HEALTH_ADDR",
            format!("127.0.0.1:{}", testkit::free_port()),
        );
        e
    }

    pub fn spawn(&self, args: &[&str], env: &HashMap<String, String>) -> Agg {
        Agg::spawn(self.dir.path(), args, env)
    }

    /// Rows of `edge` as (src, dst, action, first, last, count), sorted.
    pub fn edges(&self) -> Vec<(String, String, String, i64, i64, i64)> {
        edges(self.pg())
    }
}

pub fn edges(pg: &Postgres) -> Vec<(String, String, String, i64, i64, i64)> {
    let out = pg
        .try_psql(
            "goldmane_edges",
            "SELECT src_ns, dst_ns, action, extract(epoch FROM first_seen)::bigint, \
             extract(epoch FROM last_seen)::bigint, flow_count FROM edge ORDER BY 1, 2, 3",
        )
        .unwrap_or_default();
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                f[3].parse().unwrap_or(-1),
                f[4].parse().unwrap_or(-1),
                f[5].parse().unwrap_or(-1),
            )
        })
        .collect()
}

pub fn total_count(pg: &Postgres) -> i64 {
    edges(pg).iter().map(|e| e.5).sum()
}

/// Rows of `edge` with their side: (src, dst, action, reporter, first, last, count), sorted.
pub fn sides(pg: &Postgres) -> Vec<(String, String, String, String, i64, i64, i64)> {
    rows(
        pg,
        "SELECT src_ns, dst_ns, action, reporter, extract(epoch FROM first_seen)::bigint, \
         extract(epoch FROM last_seen)::bigint, flow_count FROM edge ORDER BY 1, 2, 3, 4",
    )
    .into_iter()
    .map(|f| {
        (
            f[0].clone(),
            f[1].clone(),
            f[2].clone(),
            f[3].clone(),
            f[4].parse().unwrap_or(-1),
            f[5].parse().unwrap_or(-1),
            f[6].parse().unwrap_or(-1),
        )
    })
    .collect()
}

/// Rows of `egress_edge` as "src dst_type dst_name proto/port action reporter count", sorted.
pub fn egress(pg: &Postgres) -> Vec<String> {
    rows(
        pg,
        "SELECT src_ns, dst_type, dst_name, proto || '/' || dst_port, action, reporter, flow_count \
         FROM egress_edge ORDER BY 1, 2, 3, 4, 5, 6",
    )
    .into_iter()
    .map(|f| f.join(" "))
    .collect()
}

pub fn rows(pg: &Postgres, sql: &str) -> Vec<Vec<String>> {
    pg.try_psql("goldmane_edges", sql)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// A bucket-aligned time `secs` ago (Goldmane's windows start at multiples of 15 s).
pub fn ago(secs: i64) -> i64 {
    bucket_start(now() - secs)
}

/// A counter or gauge from `/metrics`.
pub fn metric(a: &Agg, name: &str) -> Option<f64> {
    let (_, m) = a.get("/metrics")?;
    m.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    })
}

/// The aggregator process; stderr goes to a file; killed on drop. On drop it also asserts that
/// no secret (DSN password, key PEM) ever reached its output.
pub struct Agg {
    child: Option<Child>,
    pub log: PathBuf,
    pub out: PathBuf,
    pub health: Option<String>,
    key_marker: Vec<String>,
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Agg {
    pub fn spawn(dir: &std::path::Path, args: &[&str], env: &HashMap<String, String>) -> Agg {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = dir.join(format!("agg-{n}.stderr"));
        let out = dir.join(format!("agg-{n}.stdout"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_goldmane-edge-aggregator"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("spawn goldmane-edge-aggregator");
        let health = env
            .get("GEA_HEALTH_ADDR")
            .filter(|a| *a != "off")
            .map(|a| format!("http://{a}"));
        // Key material: a body line of each key file, never to be printed.
        let mut key_marker = Vec::new();
        if let Some(k) = env.get("GOLDMANE_CLIENT_KEY") {
            if let Ok(pem) = std::fs::read_to_string(k) {
                if let Some(l) = pem.lines().nth(1) {
                    key_marker.push(l.to_string());
                }
            }
        }
        Agg {
            child: Some(child),
            log,
            out,
            health,
            key_marker,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Wait until stderr contains `needle` (panics with the log after `secs`).
    pub fn wait_log(&self, needle: &str, secs: u64) {
        self.wait_for(secs, &format!("log line containing {needle:?}"), || {
            self.stderr().contains(needle)
        });
    }

    pub fn count(&self, needle: &str) -> usize {
        self.stderr().matches(needle).count()
    }

    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out after {secs}s waiting for {what}\n--- stderr ---\n{}",
            self.stderr()
        );
    }

    /// GET a health endpoint: (status, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let base = self.health.as_ref()?;
        testkit::proc::http_request("GET", &format!("{base}{path}"), &[], None)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig);
    }

    /// Wait for the exit code (panics after `secs`).
    pub fn wait_exit(&mut self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.check_secrets();
                return st.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                panic!(
                    "aggregator did not exit within {secs}s\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn check_secrets(&self) {
        let all = format!("{}{}", self.stderr(), self.stdout());
        assert!(!all.contains(PW), "DSN password leaked:\n{all}");
        assert!(!all.contains("PRIVATE KEY"), "key PEM leaked:\n{all}");
        for m in &self.key_marker {
            assert!(!all.contains(m.as_str()), "key material leaked:\n{all}");
        }
    }
}

impl Drop for Agg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            self.check_secrets();
        }
    }
}

/// Run the binary to completion: (exit code, stdout, stderr).
pub fn run_once(
    dir: &std::path::Path,
    args: &[&str],
    env: &HashMap<String, String>,
    secs: u64,
) -> (i32, String, String) {
    let mut a = Agg::spawn(dir, args, env);
    let code = a.wait_exit(secs);
    (code, a.stdout(), a.stderr())
}
