//! Command line (being written): fail-safe until complete.

/// Run the binary; returns the exit code.
pub fn main() -> i32 {
    eprintln!("ERROR: compat-gate: command line not implemented yet \u{2014} refusing (fail-safe)");
    3
}
