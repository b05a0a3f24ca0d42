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
        // then answer for ours while ours exits with "address already in use". So: after ready,
        // make sure our process still runs, else retry on a new port.
        for attempt in 1..=5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = crate::free_port();
            let mut child = ChildGuard::spawn(
                Command::new(&bin)
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .arg("--log.level=error")
                    // Debian's default persists to /var/lib/prometheus/pushgateway.data, shared
                    // by every instance on the machine: a new server would load another run's
                    // groups (and a SIGTERM would write ours there).
                    .arg("--persistence.file=")
                    .current_dir(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
                "prometheus-pushgateway",
            );
            let url = format!("http://127.0.0.1:{port}");
            let mut exited = false;
            crate::wait_until(30, "pushgateway /-/ready", || {
                if let Some(c) = child.0.as_mut() {
                    if let Ok(Some(_)) = c.try_wait() {
                        exited = true;
                        return true;
                    }
                }
                http_get(&format!("{url}/-/ready")).is_some()
            });
            if !exited {
                std::thread::sleep(std::time::Duration::from_millis(300));
                if let Some(c) = child.0.as_mut() {
                    exited = matches!(c.try_wait(), Ok(Some(_)));
                }
            }
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
