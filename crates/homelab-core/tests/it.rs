//! homelab-core against real processes and servers (one integration-test binary).

mod it {
    pub mod fsx;
    pub mod http;
    pub mod props;
    pub mod pushgateway;
    pub mod slack;
}

use std::path::PathBuf;

/// Path of a built example of this crate (cargo builds examples before integration tests).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join("examples").join(name);
    assert!(p.is_file(), "example {name} not built at {}", p.display());
    p
}
