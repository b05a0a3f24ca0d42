//! Local Goldmane simulator for the demo and the benchmark: the testkit's `FakeGoldmane` (full
//! upstream proto, real mutual TLS from a throwaway rcgen CA) fed with generated flows.
//!
//! ```text
//! goldmane-sim --dir DIR [--port N] [--mode demo|bench] [--flows N] [--rate PER_S] [--edges N]
//! ```
//! Writes `DIR/ca.crt`, `DIR/client.crt`, `DIR/client.key` (the material an aggregator needs)
//! and `DIR/port`, prints `ready 127.0.0.1:<port>` on stdout, then:
//! * `demo`: a realistic namespace mix reported the way Felix reports it (both sides, see
//!   `testkit::goldmane::Connection`): `--flows` connections (default 400) spread over the last
//!   15 minutes go into the ring (backfilled to every new stream; `DIR/ring` holds the number of
//!   ring messages a backfill sends), then `--rate` connections per second (default 20) land in
//!   the current bucket and go out at each rollover. Includes a source-allow +
//!   destination-deny pair, egress to the public network (tcp/443, udp/53), a namespaced and a
//!   global NetworkSet, ICMP to a private network, flows a staged policy would deny, self-edges,
//!   flows from outside the cluster (namespace `-`) and an unknown action value.
//! * `bench`: waits for the first stream, then pushes `--flows` (default 1 000 000) raw messages
//!   (not stored in the ring) over `--edges` distinct edges (default 1000) plus 10 % self-edge
//!   and 5 % outside-the-cluster flows, starts spread over the last hour, as fast as the stream
//!   takes them; then `--rate` flows per second (default 0) until killed. Prints
//!   `sent <n> in <s>s` on stdout when done.
//! * `ring`: fills every completed bucket of the ring with `--flows` distinct keys each (default
//!   1000; 242 buckets), for `Flows.List` reconciliation; prints `ring <n>` and idles.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use testkit::goldmane::{
    flow, Connection, Endpoint, FakeGoldmane, FlowResult, GoldmanePki, ServerTls, BUCKET_SECS,
    RING_BUCKETS,
};

fn usage() -> ! {
    eprintln!("usage: goldmane-sim --dir DIR [--port N] [--mode demo|bench|ring] [--flows N] [--rate PER_S] [--edges N]");
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

/// (src, dst, action, weight) of a small homelab-like service graph. Action 1: both sides
/// allow; 2: the source's egress denies; 4: egress allows but the destination's ingress denies.
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
    (1, 6, 4, 3),
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

fn ns(rng: &mut Lcg) -> &'static str {
    NAMESPACES[(rng.next() % NAMESPACES.len() as u64) as usize]
}

/// One connection of the demo mix, Felix-reported (one or two messages).
fn demo_conn(rng: &mut Lcg, start: i64) -> Vec<FlowResult> {
    let start = start - start.rem_euclid(BUCKET_SECS);
    let pod = Endpoint::pod;
    let r = rng.next() % 100;
    let c = match r {
        0..=7 => {
            // Self-edge (same namespace).
            let n = ns(rng);
            Connection::new(pod(n), pod(n), 1, 1, start)
        }
        8..=10 => Connection::new(pod(ns(rng)), Endpoint::Network("pub".into()), 1, 1, start)
            .proto("tcp", 443),
        11 => Connection::new(pod("immich"), Endpoint::Network("pub".into()), 1, 1, start)
            .proto("tcp", 443)
            // A staged egress policy would deny this one.
            .pending(Some(2), None),
        12 => Connection::new(
            pod("monitoring"),
            Endpoint::Network("pub".into()),
            1,
            1,
            start,
        )
        .proto("udp", 53),
        13 => Connection::new(
            pod("monitoring"),
            Endpoint::Network("pvt".into()),
            1,
            1,
            start,
        )
        .proto("icmp", 0),
        14 => Connection::new(
            pod("cert-manager"),
            Endpoint::NetworkSet {
                ns: Some("cert-manager".into()),
                name: "letsencrypt-api".into(),
            },
            1,
            1,
            start,
        )
        .proto("tcp", 443),
        15 => Connection::new(
            pod("ingress-nginx"),
            Endpoint::NetworkSet {
                ns: None,
                name: "cloudflare-ips".into(),
            },
            1,
            1,
            start,
        )
        .proto("tcp", 443),
        16 => {
            // From the internet to a pod: only the destination reports, source namespace "-".
            Connection::new(
                Endpoint::Network("pub".into()),
                pod("ingress-nginx"),
                1,
                1,
                start,
            )
            .proto("tcp", 443)
        }
        17 => {
            // An action value this proto version does not know (a newer server).
            let mut v = Connection::new(pod("monitoring"), pod("vault"), 1, 1, start).reports();
            for f in &mut v {
                if let Some(k) = f.flow.as_mut().and_then(|f| f.key.as_mut()) {
                    k.action = 7;
                }
            }
            return v;
        }
        _ => {
            let total: u32 = DEMO_EDGES.iter().map(|e| e.3).sum();
            let mut pick = (rng.next() % u64::from(total)) as u32;
            let mut conn = Connection::new(pod("frontend"), pod("api"), 1, 1, start);
            for &(s, d, a, w) in DEMO_EDGES {
                if pick < w {
                    let (eg, ing) = match a {
                        2 => (2, 1),
                        4 => (1, 2),
                        3 => (1, 1),
                        _ => (1, 1),
                    };
                    conn = Connection::new(pod(NAMESPACES[s]), pod(NAMESPACES[d]), eg, ing, start);
                    if (s, d) == (2, 6) {
                        // api -> dbaas: the staged policy allows it.
                        conn = conn.pending(Some(1), Some(1));
                    }
                    if (s, d) == (8, 12) {
                        // monitoring -> kube-system: the staged policy would deny it.
                        conn = conn.pending(Some(2), None);
                    }
                    break;
                }
                pick -= w;
            }
            conn
        }
    };
    c.reports()
}

/// Every benchmark message is a distinct Goldmane key in its bucket (one workload name per
/// message), as on the real server, so none is a content duplicate of another.
fn distinct(mut f: FlowResult, k: u64) -> FlowResult {
    if let Some(key) = f.flow.as_mut().and_then(|f| f.key.as_mut()) {
        key.source_name = format!("w-{k}");
    }
    f
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
            distinct(flow(id, &src, &dst, 1 + (e % 3) as i32, start), i)
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
    if mode != "demo" && mode != "bench" && mode != "ring" {
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
    if mode == "demo" {
        let n = flows.unwrap_or(400);
        let t0 = fake.now();
        let mut batch: Vec<FlowResult> = Vec::new();
        for i in 0..n {
            let start = t0 - 900 + (i as i64 * 900) / n.max(1) as i64;
            batch.extend(demo_conn(&mut rng, start));
        }
        fake.add_flows(batch);
        std::fs::write(dir.join("ring"), fake.ring_len().to_string()).expect("write ring");
        let rate = rate.unwrap_or(20);
        live(&mut fake, rate, |f| demo_conn(&mut rng, f.now()));
    } else if mode == "ring" {
        let per = flows.unwrap_or(1000);
        let head = fake.streaming_bucket();
        let oldest = fake.oldest_bucket();
        let mut b = oldest;
        let mut k = 0u64;
        while b < head {
            let batch: Vec<FlowResult> = (0..per)
                .map(|i| {
                    k += 1;
                    let e = (k + i) % 1000;
                    let mut f = flow(
                        0,
                        &format!("ns-{:03}", e % 40),
                        &format!("ns-{:03}", 40 + e / 40),
                        1,
                        b,
                    );
                    // Distinct keys: one workload name per flow.
                    if let Some(key) = f.flow.as_mut().and_then(|f| f.key.as_mut()) {
                        key.source_name = format!("w-{k}");
                    }
                    f
                })
                .collect();
            fake.add_flows(batch);
            b += BUCKET_SECS;
        }
        println!("ring {} ({} buckets)", fake.ring_len(), RING_BUCKETS);
        live(&mut fake, 0, |_| Vec::new());
    } else {
        let n = flows.unwrap_or(1_000_000);
        while fake.open_streams() == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let t0 = now();
        let started = Instant::now();
        let mut i = 0u64;
        while i < n {
            let end = (i + 4096).min(n);
            fake.inject_raw((i..end).map(|k| bench_flow(k, n, edges.max(1), t0)));
            i = end;
        }
        println!("sent {n} in {:.3}s", started.elapsed().as_secs_f64());
        let rate = rate.unwrap_or(0);
        let mut k = n;
        let edges = edges.max(1);
        live_raw(&mut fake, rate, |_| {
            k += 1;
            let e = k % edges;
            let (src, dst) = (
                format!("ns-{:03}", e % 40),
                format!("ns-{:03}", 40 + e / 40),
            );
            distinct(flow(k as i64 + 1, &src, &dst, 1, now() - 15), k)
        });
    }
}

/// Felix reporting: `rate` connections per second (in 10 batches a second) into the ring,
/// until killed; they go out to streams at each rollover.
fn live(
    fake: &mut FakeGoldmane,
    rate: u64,
    mut next: impl FnMut(&FakeGoldmane) -> Vec<FlowResult>,
) -> ! {
    let tick = Duration::from_millis(100);
    let mut carry = 0u64;
    let mut at = Instant::now();
    loop {
        at += tick;
        carry += rate;
        let n = carry / 10;
        carry %= 10;
        let mut batch = Vec::new();
        for _ in 0..n {
            batch.extend(next(fake));
        }
        if !batch.is_empty() {
            fake.add_flows(batch);
        }
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
    }
}

/// Emit `rate` raw messages per second (in 10 batches a second) straight to the open streams
/// until killed (benchmark feed).
fn live_raw(fake: &mut FakeGoldmane, rate: u64, mut next: impl FnMut(u64) -> FlowResult) -> ! {
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
            fake.inject_raw(batch);
        }
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
    }
}
