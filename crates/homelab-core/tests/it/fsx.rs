use crate::example;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A writer killed at random moments leaves the old or the new content, never a torn file,
/// and the target is 0600 whenever it exists.
#[test]
fn killed_writer_never_leaves_a_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("token");
    let size = 256 * 1024;
    std::fs::write(&target, vec![b'z'; size]).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut kills = 0;
    for i in 0..12u64 {
        let mut child = Command::new(example("atomic_writer"))
            .arg(&target)
            .arg(size.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + (i * 7) % 40));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let body = std::fs::read(&target).unwrap();
        assert_eq!(body.len(), size, "torn write after kill {i}");
        assert!(
            body.iter().all(|b| *b == body[0]),
            "mixed content after kill {i}"
        );
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(kills, 12);
    // At least one round completed in some run: the content changed from the seed.
    assert_ne!(
        std::fs::read(&target).unwrap()[0],
        b'z',
        "writer never completed a round"
    );
    // Temp files of killed writers are 0600 too (born that way, never widened).
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", e.path());
    }
}

/// Two processes: the second sees "busy" while the first holds the lock, then acquires it.
#[test]
fn lock_contention_between_processes() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("run/x.lock");
    let mut holder = Command::new(example("hold_lock"))
        .arg(&lock)
        .arg("3")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for "acquired".
    let mut out = holder.stdout.take().unwrap();
    let mut buf = [0u8; 9];
    std::io::Read::read_exact(&mut out, &mut buf).unwrap();
    assert_eq!(&buf, b"acquired\n");
    let second = Command::new(example("hold_lock"))
        .arg(&lock)
        .arg("0")
        .output()
        .unwrap();
    assert!(second.status.success());
    assert_eq!(String::from_utf8_lossy(&second.stdout), "busy\n");
    // In-process attempt agrees.
    assert!(matches!(
        homelab_core::fsx::try_lock(&lock),
        Err(homelab_core::fsx::LockError::Busy)
    ));
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The kernel releases the lock of a dead process.
    let third = Command::new(example("hold_lock"))
        .arg(&lock)
        .arg("0")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&third.stdout), "acquired\n");
}
