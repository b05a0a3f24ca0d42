//! The world outside the process: external commands with bounded time (§2.5, §2.5.1), the
//! clock and sleeps (injectable so the 15×2 s verify loop runs instantly in tests).

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Clock and sleeps.
pub trait World: Sync {
    fn now(&self) -> OffsetDateTime;
    fn sleep(&self, d: Duration);
}

/// The real clock.
pub struct RealWorld;

impl World for RealWorld {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    SpawnFailed(String),
}

#[derive(Debug, Clone)]
pub struct Output {
    pub status: Status,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Status::Exited(0)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// One line describing a failure (last stderr line, or the status).
    pub fn reason(&self) -> String {
        let err = String::from_utf8_lossy(&self.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::trim);
        match (&self.status, last) {
            (Status::TimedOut, _) => "timed out".into(),
            (Status::SpawnFailed(e), _) => e.clone(),
            // Issue 15 item 2: command output is outside text: length + projection only.
            (_, Some(l)) => format!("stderr {}", crate::decide::outside(l.as_bytes())),
            (Status::Exited(c), None) => format!("exit status {c}"),
            (Status::Signaled(s), None) => format!("killed by signal {s}"),
        }
    }
}

const MAX_CAPTURE: usize = 64 * 1024;

/// Run `cmd` in its own process group with stdin closed; capture (bounded) stdout/stderr;
/// kill the whole group after `timeout`.
pub fn run(mut cmd: Command, timeout: Duration, capture: bool) -> Output {
    cmd.stdin(Stdio::null()).process_group(0);
    if capture {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Output {
                status: Status::SpawnFailed(format!("cannot run {:?}: {e}", cmd.get_program())),
                stdout: Vec::new(),
                stderr: Vec::new(),
            }
        }
    };
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    for fd in [out.as_ref().map(fd_of), err.as_ref().map(fd_of)]
        .into_iter()
        .flatten()
    {
        set_nonblocking(fd);
    }
    let (mut so, mut se) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_micros(500);
    let status = loop {
        // Wake on output or end-of-file of the pipes (no fixed polling delay on the hot path);
        // with no pipe left, back off from 0.5 ms to 20 ms between exit checks.
        let mut fds: Vec<libc::pollfd> = [out.as_ref().map(fd_of), err.as_ref().map(fd_of)]
            .into_iter()
            .flatten()
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if !fds.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.min(Duration::from_millis(50)).as_millis().max(1) as libc::c_int;
            // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        }
        drain(&mut out, &mut so);
        drain(&mut err, &mut se);
        match child.try_wait() {
            Ok(Some(st)) => break exit_status(st),
            Ok(None) => {}
            Err(e) => break Status::SpawnFailed(e.to_string()),
        }
        if Instant::now() >= deadline {
            let pgid = child.id() as i32;
            // SAFETY: plain syscall on the child's own process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            break Status::TimedOut;
        }
        if fds.is_empty() {
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(20));
        }
    };
    drain(&mut out, &mut so);
    drain(&mut err, &mut se);
    Output {
        status,
        stdout: so,
        stderr: se,
    }
}

fn fd_of<T: std::os::fd::AsRawFd>(t: &T) -> i32 {
    t.as_raw_fd()
}

fn set_nonblocking(fd: i32) {
    // SAFETY: fcntl on a pipe fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

fn drain<R: Read>(r: &mut Option<R>, buf: &mut Vec<u8>) {
    let Some(rd) = r.as_mut() else { return };
    let mut chunk = [0u8; 8192];
    loop {
        match rd.read(&mut chunk) {
            Ok(0) => {
                *r = None;
                return;
            }
            Ok(n) => {
                if buf.len() < MAX_CAPTURE {
                    let take = n.min(MAX_CAPTURE - buf.len());
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

fn exit_status(st: std::process::ExitStatus) -> Status {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => Status::Exited(c),
        (None, Some(s)) => Status::Signaled(s),
        _ => Status::Exited(-1),
    }
}

/// External commands (systemctl, t3, npm) found on `path` (None = inherited PATH).
pub struct Commands {
    pub path: Option<OsString>,
    pub systemctl_timeout: Duration,
    pub version_timeout: Duration,
    pub npm_timeout: Duration,
}

/// `is-active` answer (§2.5, §8 "systemctl failing on is-active").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    Yes,
    No,
    /// exit ≥ 4, spawn error, timeout, signal: the command itself failed.
    Unknown(String),
}

impl Commands {
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        if let Some(p) = &self.path {
            c.env("PATH", p);
        }
        c
    }

    pub fn systemctl(&self, args: &[&str], capture: bool) -> Output {
        let mut c = self.cmd("systemctl");
        c.args(args);
        run(c, self.systemctl_timeout, capture)
    }

    pub fn is_active(&self, unit: &str) -> Active {
        let o = self.systemctl(&["is-active", "--quiet", unit], true);
        match o.status {
            Status::Exited(0) => Active::Yes,
            Status::Exited(1..=3) => Active::No,
            _ => Active::Unknown(o.reason()),
        }
    }

    /// `Type`, `ActiveState`, `SubState` of a sibling unit (`key=value` lines), or the
    /// failure reason (issue 15 item 3).
    pub fn sibling_show(&self, unit: &str) -> Result<String, String> {
        let o = self.systemctl(&["show", "-p", "Type,ActiveState,SubState", unit], true);
        if o.success() {
            Ok(o.stdout_str())
        } else {
            Err(o.reason())
        }
    }

    /// §2.5 start time, unix seconds.
    pub fn start_time(&self, unit: &str) -> Option<i64> {
        let o = self.systemctl(
            &[
                "show",
                "-p",
                "ActiveEnterTimestamp",
                "--value",
                "--timestamp=unix",
                unit,
            ],
            true,
        );
        if o.success() {
            if let Some(t) = crate::decide::parse_start_unix(&o.stdout_str()) {
                return Some(t);
            }
        }
        let o = self.systemctl(
            &["show", "-p", "ActiveEnterTimestamp", "--value", unit],
            true,
        );
        if o.success() {
            return crate::decide::parse_start_text(&o.stdout_str());
        }
        None
    }

    /// `t3 --version` → installed version (§2.5).
    pub fn installed_version(&self) -> Option<String> {
        let mut c = self.cmd("t3");
        c.arg("--version");
        let o = run(c, self.version_timeout, true);
        if !o.success() {
            return None;
        }
        crate::decide::parse_t3_version(&o.stdout_str())
    }

    /// `npm i -g t3@<v>`; output discarded.
    pub fn npm_install(&self, version: &str) -> bool {
        let mut c = self.cmd("npm");
        c.args(["i", "-g", &format!("t3@{version}")]);
        run(c, self.npm_timeout, false).success()
    }
}
