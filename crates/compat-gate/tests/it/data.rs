//! Issue 14 item 9: removed-apis.json is generated from the vendored k8s.io/api lifecycle
//! files, never hand-kept.

use compat_gate::RemovedApiTable;
use std::path::Path;
use std::process::Command;

#[test]
fn removed_api_json_is_what_the_generator_makes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        testkit::which("python3").is_some(),
        "python3 missing (the generator needs it); install it: apt-get install -y python3"
    );
    let out = Command::new("bash")
        .arg(root.join("scripts/gen-removed-apis.sh"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn generated_table_carries_the_lifecycle_files_facts() {
    let t = RemovedApiTable::compiled_in();
    let find = |g: &str, v: &str, k: &str| {
        t.removals
            .iter()
            .find(|r| r.group == g && r.version == v && r.kind == k)
            .unwrap_or_else(|| panic!("{g}/{v} {k} missing"))
    };
    // flowcontrol v1beta1 (removed 1.26) migrates to v1beta3, not v1 (v1 arrives in 1.29).
    let fs = find("flowcontrol.apiserver.k8s.io", "v1beta1", "FlowSchema");
    assert_eq!(fs.replacement, "flowcontrol.apiserver.k8s.io/v1beta3");
    assert_eq!(fs.removed_in.to_string(), "1.26");
    assert!(!find("flowcontrol.apiserver.k8s.io", "v1beta3", "FlowSchema").off_by_default);
    // The off-by-default betas (KEP-3136) and their removal minors.
    for (g, v, k, rm) in [
        (
            "authentication.k8s.io",
            "v1beta1",
            "SelfSubjectReview",
            "1.33",
        ),
        (
            "admissionregistration.k8s.io",
            "v1beta1",
            "ValidatingAdmissionPolicy",
            "1.34",
        ),
        ("storage.k8s.io", "v1beta1", "VolumeAttributesClass", "1.37"),
        ("networking.k8s.io", "v1beta1", "IPAddress", "1.37"),
        ("networking.k8s.io", "v1beta1", "ServiceCIDR", "1.37"),
        ("resource.k8s.io", "v1beta1", "ResourceClaim", "1.38"),
    ] {
        let r = find(g, v, k);
        assert_eq!(r.removed_in.to_string(), rm, "{g}/{v} {k}");
        assert!(r.off_by_default, "{g}/{v} {k}");
    }
    assert!(!find("batch", "v1beta1", "CronJob").off_by_default);
    // apps/v1beta1 never served ReplicaSet (the hand-kept table listed it).
    assert!(!t
        .removals
        .iter()
        .any(|r| r.group == "apps" && r.version == "v1beta1" && r.kind == "ReplicaSet"));
}
