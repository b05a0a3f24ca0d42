fn main() {
    std::process::exit(compat_gate::entry::run(std::env::args_os().collect()));
}
