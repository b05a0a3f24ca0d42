//! Generates the Goldmane client from the vendored subset proto, offline: protox parses the
//! .proto in pure Rust (no `protoc`), tonic-build renders the prost types and the client.

fn main() {
    let proto = "proto/goldmane_subset.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = match protox::compile([proto], ["proto"]) {
        Ok(f) => f,
        Err(e) => panic!("parsing {proto}: {e}"),
    };
    if let Err(e) = tonic_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(fds)
    {
        panic!("generating code from {proto}: {e}");
    }
}
