//! Replace a file atomically over and over: `atomic_writer <path> <size>`.
//!
//! Each round writes `size` bytes of one repeated letter, so a reader can tell a torn write
//! (mixed letters or a short file) from a whole one. The fsx tests kill this process at
//! random moments and check the target is always whole.

fn main() {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().expect("path"));
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1 << 20);
    let mut round: u8 = 0;
    loop {
        let letter = b'a' + round % 26;
        let body = vec![letter; size];
        homelab_core::fsx::atomic_write(&path, &body).expect("atomic_write");
        round = round.wrapping_add(1);
    }
}
