//! Files that never end up half-written (W3.1) and single-instance locks (W3.2).

use fs2::FileExt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Replace `target` atomically with `contents`.
///
/// The temp file is created in the target's directory with `O_EXCL` and mode 0600 from birth,
/// written, fsynced, renamed over the target and the directory is fsynced. If `target` is a
/// symlink, the link itself is replaced (never the file it points to), matching `mv -f`.
/// A crash at any point leaves either the old or the new content.
pub fn atomic_write(target: &Path, contents: &[u8]) -> io::Result<()> {
    atomic_write_mode(target, contents, 0o600)
}

/// As [`atomic_write`] with another final mode (the temp is still 0600 until renamed).
pub fn atomic_write_mode(target: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(target);
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "target has no file name"))?;
    let (tmp_path, mut f) = create_temp(&dir, &name.to_string_lossy())?;
    let result = (|| {
        f.write_all(contents)?;
        if mode != 0o600 {
            f.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp_path, target)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

fn parent_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn create_temp(dir: &Path, base: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = dir.join(format!(".{base}.tmp.{pid}.{nanos:x}{attempt}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "could not create a unique temp file",
    ))
}

/// fsync a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Outcome of a non-blocking lock attempt.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock: the caller skips, it is not a failure.
    Busy,
    /// The lock file could not be opened or locked for another reason.
    Io(io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Busy => f.write_str("lock is held by another process"),
            LockError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LockError {}

/// A held exclusive lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
}

impl LockGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

/// Take a non-blocking exclusive `flock` on `path` (created 0600, parents created).
pub fn try_lock(path: &Path) -> Result<LockGuard, LockError> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent).map_err(LockError::Io)?;
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(LockError::Io)?;
    match file.try_lock_exclusive() {
        Ok(()) => Ok(LockGuard {
            file,
            path: path.to_path_buf(),
        }),
        Err(e) if is_contended(&e) => Err(LockError::Busy),
        Err(e) => Err(LockError::Io(e)),
    }
}

fn is_contended(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
        || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replaces_content_with_0600_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("tok");
        fs::write(&p, "old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        atomic_write(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(mode(&p), 0o600);
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind");
    }

    #[test]
    fn symlinked_target_replaces_the_link_not_the_pointee() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        let link = d.path().join("link");
        fs::write(&real, "pointee").unwrap();
        symlink(&real, &link).unwrap();
        atomic_write(&link, b"fresh").unwrap();
        assert_eq!(fs::read_to_string(&real).unwrap(), "pointee");
        assert!(!fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&link).unwrap(), "fresh");
    }

    #[test]
    fn missing_directory_is_an_error_and_creates_nothing() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nope/tok");
        assert!(atomic_write(&p, b"x").is_err());
        assert!(!d.path().join("nope").exists());
    }

    #[test]
    fn custom_mode_applies_after_write() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.prom");
        atomic_write_mode(&p, b"a 1\n", 0o644).unwrap();
        assert_eq!(mode(&p), 0o644);
    }

    #[test]
    fn lock_is_busy_while_held_in_process() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/x.lock");
        let g = try_lock(&p).unwrap();
        assert!(matches!(try_lock(&p), Err(LockError::Busy)));
        drop(g);
        try_lock(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn lock_io_error_is_distinct_from_busy() {
        let r = try_lock(Path::new("/proc/self/nonexistent/x.lock"));
        assert!(matches!(r, Err(LockError::Io(_))), "{r:?}");
    }
}
