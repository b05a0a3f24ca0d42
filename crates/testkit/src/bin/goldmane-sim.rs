//! Local Goldmane simulator for the demo and the benchmark: the testkit's `FakeGoldmane` (full
//! upstream proto, real mutual TLS from a throwaway rcgen CA) fed with generated flows.
//!
//! ```text
//! goldmane-sim --dir DIR [--port N] [--mode demo|bench] [--flows N] [--rate PER_S] [--edges N]
//! ```
//! Writes `DIR/ca.crt`, `DIR/client.crt`, `DIR/client.key` (the material an aggregator needs)
//! and `DIR/port`, prints `ready 127.0.0.1:<port>` on stdout, then:
//! * `demo`: a realistic namespace mix; `--flows` flows (default 400) spread over the last
//!   15 minutes go into the ring (backfilled to every new stream), then `--rate` live flows per
//!   second (default 20) until killed. Includes self-edges, host/public-network flows (empty
//!   namespace), denies and an unknown action value, like a live cluster.
//! * `bench`: waits for the first stream, then pushes `--flows` (default 1 000 000) over
//!   `--edges` distinct edges (default 1000) plus 10 % self-edge and 5 % empty-namespace flows,
//!   starts spread over the last hour, as fast as the stream takes them; then `--rate` flows per
//!   second (default 0) until killed. Prints `sent <n> in <s>s` on stdout when done.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use testkit::goldmane::{flow, flow_full, FakeGoldmane, FlowResult, GoldmanePki, ServerTls};

fn usage() -> ! {
    eprintln!("usage: goldmane-sim --dir DIR [--port N] [--mode demo|bench] [--flows N] [--rate PER_S] [--edges N]");
    std::process::exit(2)
}

const NAMESPACES: &[&str] = &[
    "ingress-nginx",
    "frontend",
    "api",
    "auth",
    "payments",
    "orders",
    "dbaas",
    "redis",
    "monitoring",
    "loki",
    "vault",
    "cert-manager",
    "kube-system",
    "calico-system",
    "immich",
    "nextcloud",
];

/// (src, dst, action, weight) of a small homelab-like service graph.
const DEMO_EDGES: &[(usize, usize, i32, u32)] = &[
    (0, 1, 1, 30),
    (0, 2, 1, 25),
    (0, 14, 1, 8),
    (0, 15, 1, 6),
    (1, 2, 1, 20),
    (1, 3, 1, 10),
    (2, 3, 1, 12),
    (2, 4, 1, 6),
    (2, 5, 1, 9),
    (2, 6, 1, 15),
    (2, 7, 1, 10),
    (4, 6, 1, 5),
    (5, 6, 1, 7),
    (5, 4, 2, 2),
    (14, 6, 1, 4),
    (15, 6, 1, 4),
    (15, 7, 1, 3),
    (8, 2, 1, 6),
    (8, 6, 1, 3),
    (8, 12, 1, 4),
    (9, 8, 1, 2),
    (3, 10, 1, 3),
    (11, 12, 1, 2),
    (1, 6, 2, 3),
    (14, 10, 3, 1),
];

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn demo_flow(rng: &mut Lcg, id: i64, start: i64) -> FlowResult {
    let start = start - start % 15;
    let r = rng.next() % 100;
    if r < 8 {
        // Self-edge (same namespace).
        let ns = NAMESPACES[(rng.next() % NAMESPACES.len() as u64) as usize];
        return flow(id, ns, ns, 1, start);
    }
    if r < 13 {
        // Public-network egress: empty destination namespace.
        let ns = NAMESPACES[(rng.next() % NAMESPACES.len() as u64) as usize];
        return flow(id, ns, "", 1, start);
    }
    if r == 13 {
        // An action value this proto version does not know.
        return flow(id, "monitoring", "vault", 7, start);
    }
    let total: u32 = DEMO_EDGES.iter().map(|e| e.3).sum();
    let mut pick = (rng.next() % u64::from(total)) as u32;
    for &(s, d, a, w) in DEMO_EDGES {
        if pick < w {
            let reporter = 1 + (rng.next() % 2) as i32;
            return flow_full(
                id,
                NAMESPACES[s],
                NAMESPACES[d],
                a,
                start,
                start + 15,
                reporter,
            );
        }
        pick -= w;
    }
    flow(id, "frontend", "api", 1, start)
}

fn bench_flow(i: u64, n: u64, edges: u64, t0: i64) -> FlowResult {
    let start = t0 - 3600 + ((i * 3600) / n.max(1)) as i64;
    let start = start - start % 15;
    let id = i as i64 + 1;
    match i % 20 {
        0 | 10 => flow(id, "bench-self", "bench-self", 1, start),
        5 => flow(id, "bench-src", "", 1, start),
        _ => {
            // 17 is coprime with the edge counts used, so every edge is visited.
            let e = (i / 20 * 17 + i % 20) % edges;
            let src = format!("ns-{:03}", e % 40);
            let dst = format!("ns-{:03}", 40 + e / 40);
            flow(id, &src, &dst, 1 + (e % 3) as i32, start)
        }
    }
}

fn main() {
    let mut dir: Option<PathBuf> = None;
    let mut port: Option<u16> = None;
    let mut mode = String::from("demo");
    let mut flows: Option<u64> = None;
    let mut rate: Option<u64> = None;
    let mut edges: u64 = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(val())),
            "--port" => port = Some(val().parse().unwrap_or_else(|_| usage())),
            "--mode" => mode = val(),
            "--flows" => flows = Some(val().parse().unwrap_or_else(|_| usage())),
            "--rate" => rate = Some(val().parse().unwrap_or_else(|_| usage())),
            "--edges" => edges = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let Some(dir) = dir else { usage() };
    if mode != "demo" && mode != "bench" {
        usage();
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let pki = GoldmanePki::generate();
    std::fs::write(dir.join("ca.crt"), &pki.ca.cert_pem).expect("write ca.crt");
    pki.client.write(&dir, "client");
    let mut fake = FakeGoldmane::start_with(ServerTls::from_pki(&pki), port);
    std::fs::write(dir.join("port"), fake.port().to_string()).expect("write port");
    println!("ready {}", fake.addr());
    let mut rng = Lcg(0x5eed);
    let mut id: i64 = 0;
    if mode == "demo" {
        let n = flows.unwrap_or(400);
        let t0 = now();
        let batch: Vec<FlowResult> = (0..n)
            .map(|i| {
                id += 1;
                let start = t0 - 900 + (i as i64 * 900) / n.max(1) as i64;
                demo_flow(&mut rng, id, start)
            })
            .collect();
        fake.add_flows(batch);
        let rate = rate.unwrap_or(20);
        live(&mut fake, rate, |_| {
            id += 1;
            demo_flow(&mut rng, id, now() - 15)
        });
    } else {
        let n = flows.unwrap_or(1_000_000);
        fake.set_keep_ring(false);
        while fake.open_streams() == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let t0 = now();
        let started = Instant::now();
        let mut i = 0u64;
        while i < n {
            let end = (i + 4096).min(n);
            fake.add_flows((i..end).map(|k| bench_flow(k, n, edges.max(1), t0)));
            i = end;
        }
        println!("sent {n} in {:.3}s", started.elapsed().as_secs_f64());
        let rate = rate.unwrap_or(0);
        let mut k = n;
        let edges = edges.max(1);
        live(&mut fake, rate, |_| {
            k += 1;
            let e = k % edges;
            let (src, dst) = (
                format!("ns-{:03}", e % 40),
                format!("ns-{:03}", 40 + e / 40),
            );
            flow(k as i64 + 1, &src, &dst, 1, now() - 15)
        });
    }
}

/// Emit `rate` flows per second (in 10 batches a second) until killed.
fn live(fake: &mut FakeGoldmane, rate: u64, mut next: impl FnMut(u64) -> FlowResult) -> ! {
    let tick = Duration::from_millis(100);
    let mut carry = 0u64;
    let mut seq = 0u64;
    let mut at = Instant::now();
    loop {
        at += tick;
        carry += rate;
        let n = carry / 10;
        carry %= 10;
        let batch: Vec<FlowResult> = (0..n)
            .map(|_| {
                seq += 1;
                next(seq)
            })
            .collect();
        if !batch.is_empty() {
            fake.add_flows(batch);
        }
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
    }
}
