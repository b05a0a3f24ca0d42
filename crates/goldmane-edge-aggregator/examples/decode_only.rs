//! Benchmark reference (spec §10, issue "decode-only client"): the aggregator's own Goldmane
//! session (same DNS/TCP/rustls mTLS/HTTP/2 path and subset decoder) with every flow discarded —
//! no classification, de-duplication, merging or Postgres. Its rate is the ceiling the
//! aggregator's end-to-end throughput is compared with.
//!
//! ```text
//! decode_only HOST:PORT SERVER_NAME CERT KEY CA EXPECTED_FLOWS
//! ```
//! Prints `decoded <n> flows in <s>s (<rate> flows/s)` once `EXPECTED_FLOWS` arrived.

use goldmane_edge_aggregator::{certs, proto, stream};
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 6 {
        eprintln!("usage: decode_only HOST:PORT SERVER_NAME CERT KEY CA EXPECTED_FLOWS");
        std::process::exit(2);
    }
    let expected: u64 = a[5].parse().unwrap_or_else(|_| {
        eprintln!("EXPECTED_FLOWS: not a number");
        std::process::exit(2)
    });
    let m = certs::load(Path::new(&a[2]), Path::new(&a[3]), Path::new(&a[4])).unwrap_or_else(
        |(v, r)| {
            eprintln!("{v}: {r}");
            std::process::exit(2)
        },
    );
    let tls = certs::client_config(&m, false).unwrap_or_else(|e| {
        eprintln!("tls: {e}");
        std::process::exit(2)
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("runtime: {e}");
            std::process::exit(1)
        });
    let mut n = 0u64;
    let mut first: Option<Instant> = None;
    let end = rt.block_on(stream::session(
        stream::Target {
            authority: &a[0],
            server_name: &a[1],
            tls,
            request: proto::FlowStreamRequest {
                start_time_gte: 1,
                aggregation_interval: 15,
            },
            stall: Duration::from_secs(30),
        },
        |_| {},
        |f| {
            std::hint::black_box(&f);
            let t = *first.get_or_insert_with(Instant::now);
            n += 1;
            if n == expected {
                let s = t.elapsed().as_secs_f64();
                println!(
                    "decoded {n} flows in {s:.3}s ({:.0} flows/s)",
                    n as f64 / s.max(1e-9)
                );
                std::process::exit(0);
            }
        },
    ));
    eprintln!("stream ended after {n} flows: {}", end.detail);
    std::process::exit(1);
}
