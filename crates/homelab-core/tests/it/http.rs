//! The agent's trust store, seen from a fresh process (it is read once per process).

use testkit::{HttpServer, Reply};

/// A private CA installed on the host (here via `SSL_CERT_FILE`, which Go's crypto/x509 and
/// rustls-native-certs both honour) is trusted without any CA setting.
#[test]
fn host_trust_store_is_used_when_no_ca_is_configured() {
    let pki = testkit::kube::TestPki::generate();
    let srv = HttpServer::start_tls(pki.server_config(false), |_| Reply::text(200, "trusted"));
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca-certificates.crt");
    std::fs::write(&bundle, &pki.ca_pem).unwrap();
    let run = |cert_file: &std::path::Path| {
        std::process::Command::new(crate::example("https_get"))
            .arg(format!("{}/x", srv.url()))
            .env("SSL_CERT_FILE", cert_file)
            .env_remove("SSL_CERT_DIR")
            .env("NO_PROXY", "*")
            .output()
            .unwrap()
    };
    let out = run(&bundle);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200 trusted");
    // A bundle without that CA: the same server is refused.
    let other = testkit::kube::TestPki::generate();
    let foreign = dir.path().join("foreign.crt");
    std::fs::write(&foreign, &other.ca_pem).unwrap();
    let out = run(&foreign);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS"));
}
