//! Dev-only test kit: real local servers and faithful protocol stand-ins, each on a free
//! loopback port and torn down on drop (also when the test panics).
//!
//! A missing real component makes the test FAIL with the exact install command (see
//! [`require_bin`]); nothing is skipped.

#[cfg(feature = "goldmane")]
pub mod goldmane;
pub mod httpd;
#[cfg(feature = "tls")]
pub mod kube;
pub mod openbao;
pub mod postgres;
pub mod proc;
pub mod pushgateway;
pub mod slack;

pub use httpd::{HttpServer, Reply, Request};
pub use openbao::OpenBao;
pub use postgres::Postgres;
pub use pushgateway::Pushgateway;
pub use slack::SlackSink;

use std::net::TcpListener;
use std::path::PathBuf;

/// A free TCP port on 127.0.0.1 (bound then released; the caller binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Find an executable on PATH (or at one of `extra` absolute paths); panic with the install
/// command when it is missing, so a missing dependency is a loud failure, never a skip.
pub fn require_bin(name: &str, extra: &[&str], install: &str) -> PathBuf {
    if let Some(p) = which(name) {
        return p;
    }
    for e in extra {
        let p = PathBuf::from(e);
        if p.is_file() {
            return p;
        }
    }
    panic!("required test component `{name}` is not installed; install it with: {install}");
}

/// Look an executable up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Wait until `f` returns true, polling every 20 ms, or panic with `what` after `secs`.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("timed out after {secs}s waiting for {what}");
}
