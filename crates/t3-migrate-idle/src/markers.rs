//! Deferral markers (§6): listing in byte order, safe reading (never following a symlink,
//! never blocking on a FIFO, ≤ 256 bytes) and compare-then-delete (§8).

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// What was read from a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub content: Vec<u8>,
    /// Whole epoch seconds.
    pub mtime: i64,
}

/// Entry names of DEFER_DIR in byte order, hidden names dropped.
pub fn list(dir: &Path) -> std::io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = Vec::new();
    for e in fs::read_dir(dir)? {
        let n = e?.file_name();
        if n.as_bytes().first() == Some(&b'.') {
            continue;
        }
        names.push(n);
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Kind of a non-regular entry, for the WARN line.
pub fn entry_problem(path: &Path) -> Option<String> {
    match fs::symlink_metadata(path) {
        Err(e) => Some(e.to_string()),
        Ok(m) => {
            let ft = m.file_type();
            use std::os::unix::fs::FileTypeExt;
            if ft.is_file() {
                None
            } else if ft.is_symlink() {
                Some("is a symlink".into())
            } else if ft.is_dir() {
                Some("is a directory".into())
            } else if ft.is_fifo() {
                Some("is a FIFO".into())
            } else if ft.is_socket() {
                Some("is a socket".into())
            } else {
                Some("is not a regular file".into())
            }
        }
    }
}

/// Read ≤ 256 bytes of a regular-file marker (O_NOFOLLOW|O_NONBLOCK, fstat-checked).
pub fn read(path: &Path) -> std::io::Result<Marker> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    let mut content = Vec::with_capacity(256);
    f.take(256).read_to_end(&mut content)?;
    Ok(Marker {
        content,
        mtime: m.mtime(),
    })
}

/// Outcome of a compare-then-delete.
#[derive(Debug, PartialEq, Eq)]
pub enum Delete {
    Deleted,
    AlreadyGone,
    Changed,
    Failed(String),
}

/// Delete the marker only if content and mtime are unchanged since `seen` was read.
pub fn delete_if_unchanged(path: &Path, seen: &Marker) -> Delete {
    match read(path) {
        Ok(now) if &now == seen => {}
        Ok(_) => return Delete::Changed,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Delete::AlreadyGone,
        Err(e) => return Delete::Failed(e.to_string()),
    }
    match fs::remove_file(path) {
        Ok(()) => Delete::Deleted,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Delete::AlreadyGone,
        Err(e) => Delete::Failed(e.to_string()),
    }
}
