//! Child processes that die with the test, and a tiny blocking HTTP client for readiness
//! probes (the kit deliberately has no HTTP-client dependency).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::Duration;

/// Kills (SIGKILL) and reaps the child on drop, so a panicking test leaves no server behind.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command, what: &str) -> Self {
        match cmd.spawn() {
            Ok(c) => ChildGuard(Some(c)),
            Err(e) => panic!("could not start {what}: {e}"),
        }
    }
    pub fn id(&self) -> Option<u32> {
        self.0.as_ref().map(|c| c.id())
    }
    /// Panic if the child already exited (used while waiting for readiness).
    pub fn assert_running(&mut self, what: &str) {
        if let Some(c) = self.0.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("{what} exited early with {st}");
            }
        }
    }
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Minimal HTTP/1.1 request over plain TCP: `(status, body)`; `None` on any transport error.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(&[]);
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// GET and return the body of a 2xx answer.
pub fn http_get(url: &str) -> Option<String> {
    match http_request("GET", url, &[], None) {
        Some((s, b)) if (200..300).contains(&s) => Some(b),
        _ => None,
    }
}
