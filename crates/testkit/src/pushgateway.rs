//! The real Prometheus Pushgateway (Debian `prometheus-pushgateway`) on a free loopback port.

use crate::proc::{http_get, ChildGuard};
use std::process::{Command, Stdio};

const INSTALL: &str = "apt-get install -y prometheus-pushgateway";

pub struct Pushgateway {
    child: ChildGuard,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Pushgateway {
    pub fn start() -> Self {
        let bin = crate::require_bin(
            "prometheus-pushgateway",
            &["/usr/bin/prometheus-pushgateway"],
            INSTALL,
        );
        // `free_port` releases the port before the server binds it: another process (a
        // parallel test, another checkout's tests) may take it first, and its `/-/ready` would
        // then answer for ours while ours exits with "address already in use". So we wait
        // until the listening socket on the port is provably ours (its inode is one of our
        // child's fds), else retry on a new port.
        for attempt in 1..=5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = crate::free_port();
            let mut child = ChildGuard::spawn(
                Command::new(&bin)
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .arg("--log.level=error")
                    // Debian's build persists to /var/lib/prometheus/pushgateway.data by
                    // default: every instance on the machine would load (and overwrite) the
                    // same groups. Tests want an empty, private gateway.
                    .arg("--persistence.file=")
                    .current_dir(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
                "prometheus-pushgateway",
            );
            let url = format!("http://127.0.0.1:{port}");
            let pid = child.id().unwrap_or(0);
            let mut exited = false;
            crate::wait_until(30, "pushgateway /-/ready", || {
                if let Some(c) = child.0.as_mut() {
                    if let Ok(Some(_)) = c.try_wait() {
                        exited = true;
                        return true;
                    }
                }
                listens_on(pid, port) && http_get(&format!("{url}/-/ready")).is_some()
            });
            if !exited {
                return Pushgateway {
                    child,
                    port,
                    _dir: dir,
                };
            }
            assert!(
                attempt < 5,
                "prometheus-pushgateway kept exiting at start (port races?)"
            );
        }
        unreachable!()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The full `/metrics` exposition (what Prometheus would scrape).
    pub fn metrics_text(&self) -> String {
        http_get(&format!("{}/metrics", self.url())).expect("GET /metrics")
    }

    /// Seed a group the way another job would (POST text exposition).
    pub fn seed(&self, path: &str, body: &str) {
        let (st, b) = crate::proc::http_request(
            "POST",
            &format!("{}{path}", self.url()),
            &[("Content-Type", "text/plain; version=0.0.4")],
            Some(body.as_bytes()),
        )
        .expect("seed pushgateway");
        assert!((200..300).contains(&st), "seed {path}: HTTP {st} {b}");
    }

    /// Kill the server (to test "Pushgateway down").
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

/// Whether process `pid` owns the listening TCP socket on 127.0.0.1:`port` (Linux /proc).
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") else {
        return true; // no /proc: fall back to the readiness probe alone
    };
    let want = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1] == want && f[3] == "0A").then(|| f[9].to_string())
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .map(|t| {
                let t = t.to_string_lossy();
                inodes.iter().any(|i| t == format!("socket:[{i}]"))
            })
            .unwrap_or(false)
    })
}
