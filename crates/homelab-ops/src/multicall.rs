//! `homelab-ops`: the image's multicall binary (see the crate docs).

fn main() {
    std::process::exit(homelab_ops::run(std::env::args_os().collect()));
}
