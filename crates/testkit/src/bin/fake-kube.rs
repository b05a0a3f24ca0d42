//! `fake-kube`: the test kit's fake Kubernetes API server as a process, for demos and
//! benchmarks. Serves a scenario file (see `testkit::kube::cluster_from_scenario`) on loopback
//! HTTPS with a throwaway CA, writes a kubeconfig for it, prints its URL and runs until killed.
//! A scenario's `extra_apiservers: N` starts N more apiserver instances (HA) on loopback.
//!
//! Usage: fake-kube --scenario FILE --kubeconfig OUT [--client-cert] [--ready-file PATH]

use std::path::PathBuf;
use testkit::kube::{cluster_from_scenario, Auth, FakeKube, TEST_TOKEN};

fn main() {
    let mut scenario = None;
    let mut kubeconfig = None;
    let mut ready = None;
    let mut client_cert = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--scenario" => scenario = args.next().map(PathBuf::from),
            "--kubeconfig" => kubeconfig = args.next().map(PathBuf::from),
            "--ready-file" => ready = args.next().map(PathBuf::from),
            "--client-cert" => client_cert = true,
            "-h" | "--help" => {
                println!("usage: fake-kube --scenario FILE --kubeconfig OUT [--client-cert] [--ready-file PATH]");
                return;
            }
            other => {
                eprintln!("ERROR: fake-kube: unknown argument {other:?}; see --help");
                std::process::exit(2);
            }
        }
    }
    let (Some(scenario), Some(kubeconfig)) = (scenario, kubeconfig) else {
        eprintln!("ERROR: fake-kube: --scenario and --kubeconfig are required");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&scenario).unwrap_or_else(|e| {
        eprintln!("ERROR: scenario {}: {e}", scenario.display());
        std::process::exit(2)
    });
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        eprintln!("ERROR: scenario {}: {e}", scenario.display());
        std::process::exit(2)
    });
    let cluster = cluster_from_scenario(&doc).unwrap_or_else(|e| {
        eprintln!("ERROR: scenario {}: {e}", scenario.display());
        std::process::exit(2)
    });
    let auth = if client_cert {
        Auth::ClientCert
    } else {
        Auth::Token(TEST_TOKEN.to_string())
    };
    let metrics = cluster.metrics.clone();
    let fk = FakeKube::start_with(cluster, auth);
    // "extra_apiservers": N more apiserver instances (HA control plane) listed in the
    // EndpointSlices of default/kubernetes, each serving the same /metrics text.
    for _ in 0..doc["extra_apiservers"].as_u64().unwrap_or(0) {
        fk.add_apiserver(metrics.clone(), Some(true));
    }
    fk.write_kubeconfig(&kubeconfig);
    println!("fake-kube listening on {}", fk.url());
    if let Some(r) = ready {
        let _ = std::fs::write(r, fk.url());
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
