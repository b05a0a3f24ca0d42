//! §12.3.9 / §13.1: the library `evaluate` (as nightly-report links it) equals the binary's
//! `--json`, through one `ClusterRead` client that also lists nodes and Jobs.

use super::common::*;
use compat_gate::{evaluate, load_matrix, parse_target, GateOptions, Verdict};
use homelab_core::kube::{load_kubeconfig, ClusterRead, KubeClient};
use std::time::Duration;

#[test]
fn library_equals_binary_json() {
    for (scen, target, verdict) in [
        ("cluster-1.34.9.json", "1.35.6", Verdict::Blocked),
        ("cluster-1.34.9-fixed.json", "v1.35.6", Verdict::Safe),
        ("cluster-1.35.6.json", "1.36.2", Verdict::Held),
    ] {
        let env = Env::scenario(scen);
        let access = load_kubeconfig(env.kubeconfig.to_str().unwrap(), None).unwrap();
        let client = KubeClient::new(&access, Duration::from_secs(10)).unwrap();
        let opts = GateOptions::defaults(
            parse_target(target).unwrap(),
            load_matrix(&env.matrix).unwrap(),
        );
        let before = env.fk.request_count();
        let report = evaluate(&opts, &client);
        assert!(env.fk.requests()[before..]
            .iter()
            .all(|r| r.method == "GET"));
        assert_eq!(report.verdict, verdict);
        assert_eq!(report.exit_code(), verdict.exit_code());
        let bin = env.run(&[target, "--json"], &[]);
        assert_eq!(
            stable_json(report.to_json()),
            stable_json(bin.json()),
            "{scen}"
        );
        let human = env.run(&[target], &[]);
        assert_eq!(report.stdout_lines().join("\n") + "\n", human.stdout);
        for b in &report.blockers {
            assert!(b.line.starts_with(b.class.tag()));
        }
        assert_eq!(report.gauges().len(), 7);
        // The same client serves nightly-report's reads.
        assert_eq!(client.list_nodes().unwrap().len(), 3);
        assert!(client.list_jobs("k8s-upgrade").unwrap().is_empty());
    }
    // parse_target refuses what the binary refuses.
    for bad in ["1.36", "latest", "", "V1.36.2", "1.36.2-rc.1"] {
        assert!(parse_target(bad).is_err(), "{bad}");
    }
}
