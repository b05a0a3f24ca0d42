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

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// A token as §7 allows it: one run of 0x21..=0x7E.
    fn token(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0x21u8..=0x7e, 1..=max)
    }

    /// What `trim_ascii` strips around it.
    fn ws() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b' '),
                Just(b'\t'),
                Just(b'\n'),
                Just(b'\r'),
                Just(0x0c)
            ],
            0..8,
        )
    }

    /// A byte that may not appear inside a token.
    fn bad_byte() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (0u8..=0x20).prop_map(|b| vec![b]),
            (0x7fu8..=0xff).prop_map(|b| vec![b]),
            Just("\u{feff}".as_bytes().to_vec()),
            Just("ö".as_bytes().to_vec()),
        ]
    }

    fn texts(r: &Result<Secret, FileProblem>) -> Vec<String> {
        match r {
            Ok(s) => vec![format!("{s:?}"), format!("{s}")],
            Err(e) => vec![format!("{e:?}"), e.to_string()],
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes: no panic; Ok only for a trimmed run of 0x21..=0x7E of ≤ 4096 bytes, and the
        /// secret is exactly that run; Empty exactly when only ASCII whitespace.
        #[test]
        fn any_bytes_classified_exactly(raw in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let t = raw.trim_ascii();
            match parse_token(&raw) {
                Ok(s) => {
                    prop_assert!(!t.is_empty() && t.len() <= MAX_TOKEN);
                    prop_assert!(t.iter().all(|b| (0x21..=0x7e).contains(b)));
                    prop_assert_eq!(s.expose().as_bytes(), t);
                }
                Err(FileProblem::Empty) => prop_assert!(t.is_empty()),
                Err(FileProblem::NotSingleToken) => prop_assert!(
                    t.len() > MAX_TOKEN || t.iter().any(|b| !(0x21..=0x7e).contains(b))
                ),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }

        /// A valid token wrapped in any trimmable whitespace is accepted verbatim.
        #[test]
        fn wrapped_token_round_trips(pre in ws(), tok in token(MAX_TOKEN), post in ws()) {
            let raw = [pre, tok.clone(), post].concat();
            let s = parse_token(&raw).unwrap();
            prop_assert_eq!(s.expose().as_bytes(), &tok[..]);
        }

        /// One forbidden byte (space, newline, control, DEL, non-ASCII, BOM) inside the token, or
        /// a BOM in front of it, makes it NotSingleToken.
        #[test]
        fn interior_junk_or_bom_is_rejected(a in token(64), bad in bad_byte(), b in token(64), pre in ws()) {
            let raw = [pre.clone(), a.clone(), bad, b].concat();
            prop_assert_eq!(parse_token(&raw).unwrap_err(), FileProblem::NotSingleToken);
            let bom = [pre, "\u{feff}".as_bytes().to_vec(), a].concat();
            prop_assert_eq!(parse_token(&bom).unwrap_err(), FileProblem::NotSingleToken);
        }

        /// Whitespace only → Empty; more than 4096 token bytes → NotSingleToken (huge inputs too).
        #[test]
        fn empty_and_overlong(only in ws(), extra in 1usize..70_000, c in 0x21u8..=0x7e) {
            prop_assert_eq!(parse_token(&only).unwrap_err(), FileProblem::Empty);
            let long = vec![c; MAX_TOKEN + extra];
            prop_assert_eq!(parse_token(&long).unwrap_err(), FileProblem::NotSingleToken);
            prop_assert!(parse_token(&long[..MAX_TOKEN]).is_ok());
        }

        /// Neither a problem nor the accepted secret ever renders the file's token bytes.
        #[test]
        fn token_never_in_rendered_text(pre in ws(), a in "[A-Za-z0-9.]{6,40}", junk in bad_byte(), post in ws()) {
            let ok = [pre.clone(), a.as_bytes().to_vec(), post.clone()].concat();
            let bad = [pre, a.as_bytes().to_vec(), junk, a.as_bytes().to_vec(), post].concat();
            for r in [parse_token(&ok), parse_token(&bad)] {
                for text in texts(&r) {
                    prop_assert!(!text.contains(&a), "{}", text);
                }
            }
        }
    }
}
