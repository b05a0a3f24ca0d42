//! Mutual TLS against the fake Goldmane (12.3 #8, #9): every failure is classified, keeps the
//! process unready and retrying, and never streams from an unverified server.

use super::common::*;

fn start_fake(pki: &GoldmanePki, server: &testkit::goldmane::CertPair) -> FakeGoldmane {
    FakeGoldmane::start_with(
        ServerTls {
            cert_pem: server.cert_pem.clone(),
            key_pem: server.key_pem.clone(),
            client_ca_pem: pki.ca.cert_pem.clone(),
        },
        None,
    )
}

/// A server cert from a foreign CA → `unknown_ca`, no rows, unready; with
/// GOLDMANE_TLS_INSECURE=1 the same server is accepted with L-INSECURE.
#[test]
fn foreign_server_ca_is_refused_unless_insecure() {
    let w = World::new(true);
    let fake = start_fake(&w.pki, &w.pki.foreign_server);
    fake.add_flows([flow(1, "a", "b", 1, now() - 60)]);
    let mut env = w.env();
    env.insert("GOLDMANE_HOST".into(), fake.addr());
    let a = w.spawn(&[], &env);
    a.wait_log("ERROR tls unknown_ca: ", 20);
    assert!(a.stderr().contains("; reconnect in "), "{}", a.stderr());
    a.wait_for(5, "unready", || a.get("/readyz").map(|r| r.0) == Some(503));
    assert!(fake.calls().is_empty());
    drop(a);
    assert!(w.edges().is_empty());

    env.insert("GOLDMANE_TLS_INSECURE".into(), "1".into());
    let b = w.spawn(&[], &env);
    b.wait_for(20, "row via insecure", || total_count(w.pg()) == 1);
    b.wait_log(
        "WARN GOLDMANE_TLS_INSECURE set: server certificate NOT verified",
        1,
    );
}

/// A client cert from a foreign CA, or an expired one → `client_rejected` (+ L-CERTEXP).
#[test]
fn foreign_or_expired_client_cert_is_rejected() {
    let w = World::new(true);
    w.fake.add_flows([flow(1, "a", "b", 1, now() - 60)]);
    let (c, k) = w.pki.foreign_client.write(w.dir.path(), "foreign");
    let mut env = w.env();
    env.insert("GOLDMANE_CLIENT_CERT".into(), c.display().to_string());
    env.insert("GOLDMANE_CLIENT_KEY".into(), k.display().to_string());
    let a = w.spawn(&[], &env);
    a.wait_log("ERROR tls client_rejected: ", 20);
    a.wait_for(5, "unready", || a.get("/readyz").map(|r| r.0) == Some(503));
    drop(a);

    let expired = w.pki.ca.issue("whisker-backend", &[], true);
    let (c, k) = expired.write(w.dir.path(), "expired");
    env.insert("GOLDMANE_CLIENT_CERT".into(), c.display().to_string());
    env.insert("GOLDMANE_CLIENT_KEY".into(), k.display().to_string());
    let b = w.spawn(&[], &env);
    b.wait_log("ERROR tls client_rejected: ", 20);
    b.wait_log(
        "ERROR client cert expired at 2020-02-01T00:00:00+00:00 — re-sync goldmane-client-tls from whisker-backend-key-pair",
        5,
    );
    b.wait_for(5, "unready: expired", || {
        b.get("/readyz") == Some((503, "client_cert_expired\n".into()))
    });
    assert!(w.fake.calls().is_empty());
    assert!(w.fake.handshake_failures() >= 2);
    assert!(w.edges().is_empty());
}

/// A server cert without the dialled name fails (`bad_name`) unless GOLDMANE_SERVER_NAME names
/// a SAN it has.
#[test]
fn server_name_must_match() {
    let w = World::new(true);
    let server = w
        .pki
        .ca
        .issue("goldmane", &["goldmane.calico-system.svc"], false);
    let fake = start_fake(&w.pki, &server);
    fake.add_flows([flow(1, "a", "b", 1, now() - 60)]);
    let mut env = w.env();
    env.insert("GOLDMANE_HOST".into(), fake.addr());
    env.insert("GOLDMANE_SERVER_NAME".into(), "localhost".into());
    let a = w.spawn(&[], &env);
    a.wait_log("ERROR tls bad_name: ", 20);
    drop(a);
    // Issue 13: the default server name is the SAN every operator-issued cert carries.
    env.remove("GOLDMANE_SERVER_NAME");
    let b = w.spawn(&[], &env);
    b.wait_for(20, "row with server name", || total_count(w.pg()) == 1);
    b.wait_log("server_name=goldmane.calico-system.svc", 1);
}

/// 12.3 #9: cert files replaced on disk, the fake drops the connection → the next request
/// presents the new certificate; no restart.
#[test]
fn rotated_client_cert_is_picked_up_on_reconnect() {
    let w = World::new(true);
    let mut env = w.env();
    env.insert("GEA_STALL_TIMEOUT_SECS".into(), "60".into());
    let a = w.spawn(&[], &env);
    a.wait_for(20, "first stream", || w.fake.calls().len() == 1);
    assert_eq!(w.fake.calls()[0].client_serial, w.pki.client.serial);
    let fresh = w.pki.ca.issue("whisker-backend", &[], false);
    fresh.write(w.dir.path(), "client");
    w.fake.drop_connections();
    a.wait_for(20, "second stream", || w.fake.calls().len() >= 2);
    assert_eq!(w.fake.calls()[1].client_serial, fresh.serial);
    // A broken file later keeps the last good material.
    std::fs::write(&w.key, "garbage").unwrap();
    w.fake.drop_connections();
    a.wait_log("ERROR cert reload failed: ", 20);
    a.wait_for(20, "third stream", || w.fake.calls().len() >= 3);
    assert_eq!(w.fake.calls()[2].client_serial, fresh.serial);
}
