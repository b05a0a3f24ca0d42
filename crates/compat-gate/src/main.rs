fn main() {
    std::process::exit(compat_gate::cli::main());
}
