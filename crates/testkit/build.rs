//! With the `goldmane` feature: generate the fake Goldmane's server and client from the full
//! upstream proto, offline (protox parses it in pure Rust; no `protoc`).

fn main() {
    #[cfg(feature = "goldmane")]
    {
        let proto = "proto/api.proto";
        println!("cargo:rerun-if-changed={proto}");
        let fds = match protox::compile([proto], ["proto"]) {
            Ok(f) => f,
            Err(e) => panic!("parsing {proto}: {e}"),
        };
        if let Err(e) = tonic_build::configure()
            .build_transport(false)
            .compile_fds(fds)
        {
            panic!("generating code from {proto}: {e}");
        }
    }
}
