//! §3.1 "rustls per sslmode" against a real Postgres serving TLS with a throwaway CA: libpq's
//! meaning of every sslmode (prefer/require encrypt without checking, verify-* check).

use super::support::*;
use std::os::unix::fs::MetadataExt;

#[test]
fn every_sslmode_against_a_tls_only_role() {
    let env = Env::new();
    env.edge("a", "b", "allow", "1 hour", 1);
    let pki = testkit::kube::TestPki::generate();
    let data = std::path::PathBuf::from(env.sql("SHOW data_directory"));
    let owner = std::fs::metadata(&data).unwrap();
    for (name, pem) in [
        ("server.crt", &pki.server_cert_pem),
        ("server.key", &pki.server_key_pem),
    ] {
        let p = data.join(name);
        std::fs::write(&p, pem).unwrap();
        std::os::unix::fs::chown(&p, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    // The role may only connect over TLS, so a success proves the session was encrypted.
    let hba = env.sql("SHOW hba_file");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "hostssl all tlsonly 127.0.0.1/32 trust\nhost all tlsonly 127.0.0.1/32 reject\n{old}"
        ),
    )
    .unwrap();
    env.sql("CREATE ROLE tlsonly LOGIN; GRANT SELECT ON edge, egress_edge TO tlsonly");
    env.sql("ALTER SYSTEM SET ssl = on");
    env.sql("SELECT pg_reload_conf()");
    testkit::wait_until(10, "ssl = on", || env.sql("SHOW ssl") == "on");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let port = env.pg.port();
    let url = |q: &str| format!("postgres://tlsonly@127.0.0.1:{port}/{DB}{q}");
    let ca_q = format!("sslrootcert={}", ca.display());
    let dry = |dsn: String| {
        let vars = vec![("DATABASE_URL".to_string(), dsn)];
        run(&config(&vars, &["--dry-run"]))
    };
    for dsn in [
        url(""),
        url("?sslmode=prefer"),
        url("?sslmode=require"),
        url(&format!("?sslmode=verify-ca&{ca_q}")),
        url(&format!("?sslmode=verify-full&{ca_q}")),
        format!("host=127.0.0.1 port={port} user=tlsonly dbname={DB} sslmode=verify-full {ca_q}"),
    ] {
        let r = dry(dsn.clone());
        assert_eq!(r.code, 0, "{dsn}: {}", r.all());
        assert!(
            r.cap.stdout[0].starts_with("*1 new edge in last 24h*"),
            "{dsn}"
        );
    }
    // Not trusted: the web PKI roots do not know the throwaway CA.
    let r = dry(url("?sslmode=verify-full"));
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.line("database: ").contains("certificate"), "{}", r.all());
    // Plain text is refused by the server for this role.
    let r = dry(url("?sslmode=disable"));
    assert_eq!(r.code, 3, "{}", r.all());
    // A missing CA file is a clear database error naming the file.
    let r = dry(url("?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"));
    assert_eq!(r.code, 3);
    assert!(
        r.line("database: ")
            .contains("sslrootcert /nonexistent/ca.pem: "),
        "{}",
        r.all()
    );
    // An unknown sslmode is a config error naming the variable.
    let vars = [("DATABASE_URL".to_string(), url("?sslmode=sometimes"))];
    let e = edges_digest::config::parse_config(
        &|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        &["edges-digest".to_string(), "--dry-run".to_string()],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config DATABASE_URL: invalid: sslmode=sometimes"),
        "{e}"
    );
}
