//! Human log lines plus a copy to syslog under the original script's identifier, so existing
//! journal/Loki rules keep matching (workspace W2.6).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use time::{OffsetDateTime, UtcOffset};

/// Syslog severities (RFC 5424 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Severity {
    /// The level word used by `<ts> <LEVEL> <text>` lines.
    pub fn word(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Warning => "WARN",
            Severity::Notice | Severity::Info => "INFO",
            Severity::Debug => "DEBUG",
        }
    }
}

/// Syslog facility `user`, as `logger(1)` uses by default.
pub const FACILITY_USER: u8 = 1;

/// The local UTC offset. `time`'s own lookup refuses in multi-threaded processes, so ask libc.
pub fn local_offset_at(unix: i64) -> UtcOffset {
    let t: libc::time_t = unix as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we own; both pointers are valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return UtcOffset::UTC;
    }
    UtcOffset::from_whole_seconds(tm.tm_gmtoff as i32).unwrap_or(UtcOffset::UTC)
}

/// Format like `date -Is`: local time, seconds, numeric offset (`2026-07-03T20:09:36+00:00`).
pub fn format_is(t: OffsetDateTime) -> String {
    let o = t.offset();
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        sign,
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

/// Now, in local time, formatted like `date -Is`.
pub fn timestamp() -> String {
    let now = OffsetDateTime::now_utc();
    let off = local_offset_at(now.unix_timestamp());
    format_is(now.to_offset(off))
}

/// Format a UTC instant as `date -Is -u` would (`+00:00`).
pub fn format_utc(t: OffsetDateTime) -> String {
    format_is(t.to_offset(UtcOffset::UTC))
}

/// `<ts> <LEVEL> <text>`: the line shape of the Kubernetes binaries.
pub fn leveled_line(sev: Severity, text: &str) -> String {
    format!("{} {} {}", timestamp(), sev.word(), text)
}

/// Where the human copy of a line goes.
#[derive(Debug, Clone)]
pub enum Channel {
    Stdout,
    Stderr,
    /// Appended; created 0600 with its parent directories when missing.
    File(PathBuf),
    /// Only syslog (e.g. tests of the datagram path).
    Discard,
}

/// Encode one syslog datagram the way `logger(1)` does for the local socket.
pub fn syslog_datagram(facility: u8, sev: Severity, ident: &str, msg: &str) -> String {
    let pri = u16::from(facility) * 8 + sev as u16;
    format!("<{pri}>{ident}: {msg}")
}

/// One logger per process: writes the human line and the syslog copy in one call.
pub struct Logger {
    ident: String,
    channel: Channel,
    facility: u8,
    syslog_path: Option<PathBuf>,
    sock: Mutex<Option<UnixDatagram>>,
}

impl Logger {
    /// A logger sending its syslog copy to `/dev/log` when that socket exists.
    pub fn new(ident: impl Into<String>, channel: Channel) -> Self {
        Self::with_syslog_path(ident, channel, Some(PathBuf::from("/dev/log")))
    }

    /// As [`Logger::new`] with another syslog socket (tests), or `None` for no syslog copy.
    pub fn with_syslog_path(
        ident: impl Into<String>,
        channel: Channel,
        syslog_path: Option<PathBuf>,
    ) -> Self {
        Logger {
            ident: ident.into(),
            channel,
            facility: FACILITY_USER,
            syslog_path,
            sock: Mutex::new(None),
        }
    }

    pub fn ident(&self) -> &str {
        &self.ident
    }

    /// Write `human` to the channel and `msg` to syslog. Syslog trouble is ignored (a missing
    /// socket is normal outside systemd); a failed human write is returned because some
    /// binaries must turn it into a non-zero exit.
    pub fn emit(&self, sev: Severity, human: &str, msg: &str) -> io::Result<()> {
        self.syslog(sev, msg);
        self.write_human(human)
    }

    /// Send only the syslog copy.
    pub fn syslog(&self, sev: Severity, msg: &str) {
        let Some(path) = &self.syslog_path else {
            return;
        };
        let dgram = syslog_datagram(self.facility, sev, &self.ident, msg);
        let mut guard = match self.sock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.is_none() {
            if let Ok(s) = UnixDatagram::unbound() {
                if s.connect(path).is_ok() {
                    *guard = Some(s);
                }
            }
        }
        if let Some(s) = guard.as_ref() {
            if s.send(dgram.as_bytes()).is_err() {
                *guard = None;
            }
        }
    }

    /// Write one human line (a newline is appended).
    pub fn write_human(&self, line: &str) -> io::Result<()> {
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        match &self.channel {
            Channel::Stdout => {
                let mut o = io::stdout().lock();
                o.write_all(buf.as_bytes())?;
                o.flush()
            }
            Channel::Stderr => io::stderr().lock().write_all(buf.as_bytes()),
            Channel::File(p) => append_line(p, &buf),
            Channel::Discard => Ok(()),
        }
    }
}

/// Append to a log file, creating it 0600 (and its parents) when missing.
pub fn append_line(path: &Path, text: &str) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn date_is_shape() {
        assert_eq!(
            format_is(datetime!(2026-07-03 20:09:36 +00:00)),
            "2026-07-03T20:09:36+00:00"
        );
        assert_eq!(
            format_is(datetime!(2026-01-02 03:04:05 -05:30)),
            "2026-01-02T03:04:05-05:30"
        );
        assert_eq!(
            format_is(datetime!(2026-01-02 03:04:05.999 +02:00)),
            "2026-01-02T03:04:05+02:00"
        );
    }

    #[test]
    fn timestamp_parses_back_as_rfc3339() {
        let ts = timestamp();
        assert_eq!(ts.len(), 25, "{ts}");
        time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339)
            .expect("rfc3339");
    }

    #[test]
    fn datagram_priority() {
        assert_eq!(
            syslog_datagram(FACILITY_USER, Severity::Notice, "t3-migrate-idle", "hi"),
            "<13>t3-migrate-idle: hi"
        );
        assert_eq!(
            syslog_datagram(FACILITY_USER, Severity::Error, "x", "m"),
            "<11>x: m"
        );
    }

    #[test]
    fn leveled_line_shape() {
        let l = leveled_line(Severity::Warning, "pushgateway: down");
        assert!(l.ends_with(" WARN pushgateway: down"), "{l}");
    }

    #[test]
    fn file_channel_appends_and_creates_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/x.log");
        let lg = Logger::with_syslog_path("x", Channel::File(p.clone()), None);
        lg.emit(Severity::Info, "one", "one").unwrap();
        lg.emit(Severity::Info, "two", "two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one\ntwo\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn missing_syslog_socket_is_ignored() {
        let lg = Logger::with_syslog_path(
            "x",
            Channel::Discard,
            Some(PathBuf::from("/nonexistent/dev/log")),
        );
        lg.emit(Severity::Info, "h", "m").unwrap();
    }

    #[test]
    fn syslog_datagram_reaches_a_socket() {
        let d = tempfile::tempdir().unwrap();
        let sock_path = d.path().join("log");
        let rx = UnixDatagram::bind(&sock_path).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let lg = Logger::with_syslog_path("t3-migrate-idle", Channel::Discard, Some(sock_path));
        lg.emit(Severity::Notice, "t3-migrate-idle: hello", "hello — world")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "<13>t3-migrate-idle: hello — world"
        );
    }

    #[test]
    fn unwritable_file_channel_reports_error() {
        let lg = Logger::with_syslog_path(
            "x",
            Channel::File(PathBuf::from("/proc/nonexistent/x.log")),
            None,
        );
        assert!(lg.emit(Severity::Info, "h", "m").is_err());
    }
}
