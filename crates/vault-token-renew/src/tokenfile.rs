//! `~/.vault-token`: read and validate (§2.2, §7), replace atomically on heal (§5.4).

use homelab_core::Secret;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Largest token accepted (§7); the read stops shortly after it.
pub const MAX_TOKEN: usize = 4096;

/// Why the file cannot be used; rendered after `FAIL: token lookup: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    NotFound,
    Empty,
    NotSingleToken,
    Io(String),
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::NotFound => f.write_str("~/.vault-token not found"),
            FileProblem::Empty => f.write_str("~/.vault-token is empty"),
            FileProblem::NotSingleToken => {
                f.write_str("~/.vault-token does not hold a single token")
            }
            FileProblem::Io(e) => write!(f, "~/.vault-token: {e}"),
        }
    }
}

/// The pure content rule: trim ASCII whitespace, then one run of 0x21..=0x7E, ≤ 4096 bytes.
pub fn parse_token(raw: &[u8]) -> Result<Secret, FileProblem> {
    let t = raw.trim_ascii();
    if t.is_empty() {
        return Err(FileProblem::Empty);
    }
    if t.len() > MAX_TOKEN || !t.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(FileProblem::NotSingleToken);
    }
    // All bytes are printable ASCII, so this is valid UTF-8.
    Ok(Secret::new(String::from_utf8_lossy(t).into_owned()))
}

/// What reading the file produced, plus a warning when its mode had to be tightened.
pub struct Read0 {
    pub token: Secret,
    pub warning: Option<String>,
}

/// Read the token file without ever blocking (FIFO) and tighten a group/world-readable mode.
pub fn read(path: &Path) -> Result<Read0, FileProblem> {
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileProblem::NotFound),
        Err(e) => return Err(FileProblem::Io(e.to_string())),
    };
    let meta = f.metadata().map_err(|e| FileProblem::Io(e.to_string()))?;
    if meta.is_dir() {
        return Err(FileProblem::Io("is a directory, not a file".into()));
    }
    if !meta.is_file() {
        return Err(FileProblem::Io(
            "is not a regular file (FIFO, socket or device)".into(),
        ));
    }
    let mut buf = Vec::with_capacity(256);
    (&mut f)
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| FileProblem::Io(e.to_string()))?;
    let token = parse_token(&buf)?;
    let mode = meta.permissions().mode() & 0o777;
    let warning = if mode & 0o077 != 0 {
        Some(
            match f.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => format!(
                    "WARNING: ~/.vault-token was mode {mode:04o} (readable by others); changed to 0600"
                ),
                Err(e) => format!(
                    "WARNING: ~/.vault-token is mode {mode:04o} (readable by others) and could not be changed to 0600: {e}"
                ),
            },
        )
    } else {
        None
    };
    Ok(Read0 { token, warning })
}

/// Re-read the raw token for the "changed during heal" check; any problem counts as changed.
pub fn current(path: &Path) -> Option<Secret> {
    read(path).ok().map(|r| r.token)
}

/// Replace the file atomically with the new token, no trailing newline, mode 0600 (§5.4).
pub fn write(path: &Path, token: &Secret) -> std::io::Result<()> {
    homelab_core::fsx::atomic_write(path, token.expose().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_rules() {
        assert_eq!(parse_token(b"  s.abc\n").unwrap().expose(), "s.abc");
        assert_eq!(parse_token(b"").unwrap_err(), FileProblem::Empty);
        assert_eq!(parse_token(b" \n\t ").unwrap_err(), FileProblem::Empty);
        assert_eq!(
            parse_token(b"a\nb").unwrap_err(),
            FileProblem::NotSingleToken
        );
        assert_eq!(
            parse_token(b"a b").unwrap_err(),
            FileProblem::NotSingleToken
        );
        assert_eq!(
            parse_token("tök".as_bytes()).unwrap_err(),
            FileProblem::NotSingleToken
        );
        assert_eq!(
            parse_token(b"a\x01").unwrap_err(),
            FileProblem::NotSingleToken
        );
        assert_eq!(
            parse_token(&[b'x'; 4097]).unwrap_err(),
            FileProblem::NotSingleToken
        );
        assert!(parse_token(&[b'x'; 4096]).is_ok());
    }

    #[test]
    fn problem_texts() {
        assert_eq!(
            FileProblem::NotFound.to_string(),
            "~/.vault-token not found"
        );
        assert_eq!(FileProblem::Empty.to_string(), "~/.vault-token is empty");
        assert_eq!(
            FileProblem::NotSingleToken.to_string(),
            "~/.vault-token does not hold a single token"
        );
    }
}
