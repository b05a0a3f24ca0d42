//! Take the single-instance lock and report: `hold_lock <path> <seconds>`.
//!
//! Prints `acquired` and holds the lock for the given time, or prints `busy` and exits 0 the
//! way a oneshot skips when another run holds it (workspace W3.2).

use homelab_core::fsx::{try_lock, LockError};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().expect("path"));
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    match try_lock(&path) {
        Ok(_guard) => {
            println!("acquired");
            std::thread::sleep(std::time::Duration::from_secs(secs));
        }
        Err(LockError::Busy) => println!("busy"),
        Err(LockError::Io(e)) => {
            eprintln!("lock {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
