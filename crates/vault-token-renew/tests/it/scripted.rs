//! What OpenBao cannot be made to do, on a scripted loopback server: 5xx, malformed JSON,
//! redirects to another host, a slow server, answers echoing the token, a file replaced
//! during the heal.

use super::common::*;
use serde_json::json;
use std::time::Duration;
use testkit::{HttpServer, Reply};

const OLD: char = 'O';
const NEW: char = 'N';

/// A foreign admin token in the file; the server mints `fake_token(NEW)` with accessor
/// `acc-new`; `create` decides the create answer.
fn heal_server(create: impl Fn() -> Reply + Send + Sync + 'static) -> HttpServer {
    let new = fake_token(NEW);
    scripted(move |r, tok| match (r.method.as_str(), r.path()) {
        ("GET", "/v1/auth/token/lookup-self") if tok == new => Reply::json(200, &ours()),
        ("GET", "/v1/auth/token/lookup-self") => Reply::json(
            200,
            &lookup_json("oidc-vbarzin", &["default"], "acc-foreign"),
        ),
        ("POST", "/v1/auth/token/create") => create(),
        ("GET", "/v1/auth/token/accessors") => Reply::json(
            200,
            &json!({"data": {"keys": ["acc-new", "acc-old", "acc-foreign", "acc-gone", "acc-old2"]}}),
        ),
        ("POST", "/v1/auth/token/lookup-accessor") => {
            let a = r.json()["accessor"].as_str().unwrap_or("").to_string();
            match a.as_str() {
                "acc-old" | "acc-old2" => Reply::json(
                    200,
                    &lookup_json("token-devvm-wizard", &["default", "vault-admin"], &a),
                ),
                "acc-foreign" => Reply::json(200, &lookup_json("oidc-vbarzin", &["default"], &a)),
                _ => Reply::json(400, &json!({"errors": ["invalid accessor"]})),
            }
        }
        ("POST", "/v1/auth/token/revoke-accessor") => {
            if r.json()["accessor"] == "acc-old2" {
                Reply::json(500, &json!({"errors": ["storage busy"]}))
            } else {
                Reply::new(204)
            }
        }
        _ => Reply::json(404, &json!({"errors": []})),
    })
}

fn minted() -> Reply {
    Reply::json(
        200,
        &json!({"auth": {"client_token": fake_token(NEW), "accessor": "acc-new", "lease_duration": 2_764_800}}),
    )
}

fn foreign_env(srv: &HttpServer) -> Env {
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    env.secret(&fake_token(NEW));
    env
}

#[test]
fn heal_sweeps_only_stale_accessors_and_counts_only_successful_revokes() {
    let srv = heal_server(minted);
    let env = foreign_env(&srv);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.line(),
        "HEALED: re-minted periodic token from foreign dn=oidc-vbarzin (revoked 1 stale periodic token(s))"
    );
    assert_eq!(env.read_token_bytes(), fake_token(NEW).as_bytes());
    let revoked: Vec<String> = srv
        .requests()
        .iter()
        .filter(|r| r.path() == "/v1/auth/token/revoke-accessor")
        .map(|r| r.json()["accessor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(revoked, ["acc-old", "acc-old2"]);
    // Create: the §3 body, with the foreign token, exactly once.
    let creates: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/v1/auth/token/create")
        .collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].header("X-Vault-Token"),
        Some(fake_token(OLD).as_str())
    );
    assert_eq!(
        creates[0].json(),
        json!({"policies": ["vault-admin", "sops-admin"], "no_parent": true, "period": "768h",
               "display_name": "devvm-wizard", "renewable": true})
    );
    // The sweep used the new token's authority.
    for r in srv
        .requests()
        .iter()
        .filter(|r| r.path().contains("accessor"))
    {
        assert_eq!(r.header("X-Vault-Token"), Some(fake_token(NEW).as_str()));
    }
    // The foreign token is never revoked.
    assert!(!calls(&srv).iter().any(|c| c.ends_with("revoke-self")));
}

#[test]
fn create_503_is_drift2_and_never_retried() {
    let srv = heal_server(|| Reply::json(503, &json!({"errors": ["Vault is sealed"]})));
    let env = foreign_env(&srv);
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("DRIFT: ~/.vault-token is dn=oidc-vbarzin \u{2014} heal failed (POST /v1/auth/token/create: HTTP 503: Vault is sealed); will retry next run. Manual re-mint: vault login -method=oidc"),
        "{line}"
    );
    assert_eq!(
        calls(&srv),
        [
            "GET /v1/auth/token/lookup-self",
            "POST /v1/auth/token/create"
        ]
    );
    assert_eq!(env.read_token_bytes(), before);
}

#[test]
fn create_answer_without_client_token_is_denied() {
    let srv = heal_server(|| Reply::json(200, &json!({"auth": {"client_token": ""}})));
    let env = foreign_env(&srv);
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out
        .line()
        .contains("heal denied, foreign token lacks create authority"));
}

#[test]
fn new_token_lookup_failure_revokes_it() {
    let new = fake_token(NEW);
    let srv = scripted(move |r, tok| match r.path() {
        "/v1/auth/token/lookup-self" if tok == new => {
            Reply::json(403, &json!({"errors": ["permission denied"]}))
        }
        "/v1/auth/token/lookup-self" => Reply::json(200, &lookup_json("token", &["root"], "a")),
        "/v1/auth/token/create" => minted(),
        "/v1/auth/token/revoke-self" => Reply::new(204),
        _ => Reply::new(404),
    });
    let env = foreign_env(&srv);
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: heal minted a token but its lookup failed: GET /v1/auth/token/lookup-self: HTTP 403: permission denied; minted token revoked"
    );
    assert_eq!(env.read_token_bytes(), before);
    let last = srv.requests().pop().unwrap();
    assert_eq!(last.path(), "/v1/auth/token/revoke-self");
    assert_eq!(last.header("X-Vault-Token"), Some(fake_token(NEW).as_str()));
}

#[test]
fn unexpected_mint_with_failed_revoke_says_so() {
    let new = fake_token(NEW);
    let srv = scripted(move |r, tok| match r.path() {
        "/v1/auth/token/lookup-self" if tok == new => Reply::json(
            200,
            &lookup_json(
                "token-devvm-wizard",
                &["default", "vault-admin-ro"],
                "acc-new",
            ),
        ),
        "/v1/auth/token/lookup-self" => Reply::json(200, &lookup_json("token", &["root"], "a")),
        "/v1/auth/token/create" => minted(),
        "/v1/auth/token/revoke-self" => Reply::json(403, &json!({"errors": ["permission denied"]})),
        _ => Reply::new(404),
    });
    let env = foreign_env(&srv);
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: heal minted an unexpected token (dn=token-devvm-wizard policies=default\\,vault-admin-ro) \u{2014} not writing it; minted token NOT revoked: POST /v1/auth/token/revoke-self: HTTP 403: permission denied"
    );
}

#[test]
fn list_denied_or_missing_new_accessor_skips_the_sweep() {
    // LIST 403.
    let new = fake_token(NEW);
    let srv = scripted(move |r, tok| match r.path() {
        "/v1/auth/token/lookup-self" if tok == new => Reply::json(200, &ours()),
        "/v1/auth/token/lookup-self" => Reply::json(200, &lookup_json("token", &["root"], "a")),
        "/v1/auth/token/create" => minted(),
        "/v1/auth/token/accessors" => Reply::json(403, &json!({"errors": ["permission denied"]})),
        _ => Reply::new(404),
    });
    let env = foreign_env(&srv);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.line(),
        "HEALED: re-minted periodic token from foreign dn=token (accessor sweep skipped (list denied))"
    );
    // New token's lookup has no accessor: same text, and no LIST request at all.
    let new = fake_token(NEW);
    let srv = scripted(move |r, tok| match r.path() {
        "/v1/auth/token/lookup-self" if tok == new => Reply::json(
            200,
            &json!({"data": {"display_name": "token-devvm-wizard", "policies": ["vault-admin"]}}),
        ),
        "/v1/auth/token/lookup-self" => Reply::json(200, &lookup_json("token", &["root"], "a")),
        "/v1/auth/token/create" => minted(),
        _ => Reply::new(404),
    });
    let env = foreign_env(&srv);
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert!(out
        .line()
        .ends_with("(accessor sweep skipped (list denied))"));
    assert!(!calls(&srv).iter().any(|c| c.contains("accessors")));
}

#[test]
fn file_replaced_during_heal_is_not_overwritten() {
    let dir = shared(None::<std::path::PathBuf>);
    let d2 = dir.clone();
    let new = fake_token(NEW);
    let srv = scripted(move |r, tok| match r.path() {
        "/v1/auth/token/lookup-self" if tok == new => Reply::json(200, &ours()),
        "/v1/auth/token/lookup-self" => Reply::json(200, &lookup_json("token", &["root"], "a")),
        "/v1/auth/token/create" => {
            // Someone runs `vault login` while the heal is in flight.
            if let Some(p) = d2.lock().unwrap().as_ref() {
                std::fs::write(p, "s.LOGINLOGINLOGINLOGINLOGI\n").unwrap();
            }
            minted()
        }
        "/v1/auth/token/revoke-self" => Reply::new(204),
        _ => Reply::new(404),
    });
    let env = foreign_env(&srv);
    env.secret("s.LOGINLOGINLOGINLOGINLOGI");
    *dir.lock().unwrap() = Some(env.token_file());
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: ~/.vault-token changed during heal \u{2014} not overwriting; minted token revoked"
    );
    assert_eq!(env.read_token_bytes(), b"s.LOGINLOGINLOGINLOGINLOGI\n");
}

#[test]
fn malformed_json_on_lookup_and_on_renew_fails_without_heal() {
    let srv = scripted(|_, _| Reply::text(200, "<html>proxy login</html>"));
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: token lookup: GET /v1/auth/token/lookup-self: invalid JSON from /v1/auth/token/lookup-self"
    );
    assert_eq!(calls(&srv).len(), 1);

    // 2xx JSON without `data` is not "ours" either.
    let srv = scripted(|_, _| Reply::json(200, &json!({"auth": null})));
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out
        .line()
        .starts_with("FAIL: token lookup: GET /v1/auth/token/lookup-self: invalid JSON"));
    assert_eq!(calls(&srv).len(), 1);

    let srv = scripted(|r, _| match r.path() {
        "/v1/auth/token/lookup-self" => Reply::json(200, &ours()),
        _ => Reply::text(200, "{not json"),
    });
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    let out = env.run(&["--json"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: PUT /v1/auth/token/renew-self: invalid JSON from /v1/auth/token/renew-self"
    );
    assert_eq!(
        calls(&srv),
        [
            "GET /v1/auth/token/lookup-self",
            "PUT /v1/auth/token/renew-self"
        ]
    );
    assert_eq!(out.json()["result"], "fail");
    assert_eq!(out.json()["dn"], "token-devvm-wizard");
}

#[test]
fn renew_error_is_fail_and_5xx_lookup_is_retried_twice() {
    let srv = scripted(|r, _| match r.path() {
        "/v1/auth/token/lookup-self" => Reply::json(200, &ours()),
        _ => Reply::json(
            400,
            &json!({"errors": ["lease is not renewable", "second"]}),
        ),
    });
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: PUT /v1/auth/token/renew-self: HTTP 400: lease is not renewable; second"
    );

    let srv = scripted(|_, _| Reply::json(503, &json!({"errors": ["Vault is sealed"]})));
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert_eq!(
        out.line(),
        "FAIL: token lookup: GET /v1/auth/token/lookup-self: HTTP 503: Vault is sealed"
    );
    assert_eq!(srv.request_count(), 3, "one call plus two retries");
}

#[test]
fn cross_host_redirect_never_carries_the_token() {
    let other = HttpServer::start(|_| Reply::json(200, &ours()));
    let target = other.url();
    let srv =
        scripted(move |r, _| Reply::new(307).header("Location", &format!("{target}{}", r.target)));
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("FAIL: token lookup: GET /v1/auth/token/lookup-self: HTTP 307 redirect to another host refused"),
        "{line}"
    );
    assert_eq!(
        other.request_count(),
        0,
        "the token followed a cross-host redirect"
    );
}

#[test]
fn same_host_307_is_followed() {
    let srv = scripted(|r, _| match r.path() {
        "/v1/auth/token/lookup-self" => Reply::new(307).header("Location", "/moved/lookup-self"),
        "/moved/lookup-self" => Reply::json(200, &ours()),
        "/v1/auth/token/renew-self" => Reply::json(200, &renew_ok()),
        _ => Reply::new(404),
    });
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.line(),
        "OK renewed (dn=token-devvm-wizard ttl=2764800s)"
    );
}

#[test]
fn slow_server_times_out_as_a_lookup_failure() {
    let srv = scripted(|_, _| Reply::json(200, &ours()).delay(Duration::from_secs(20)));
    let mut env = Env::new(&srv.url());
    env.setenv("VTR_HTTP_TIMEOUT", "0.5");
    env.write_token(&fake_token(OLD));
    let before = env.read_token_bytes();
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    let line = out.line();
    assert!(
        line.starts_with("FAIL: token lookup: GET /v1/auth/token/lookup-self: timed out"),
        "{line}"
    );
    assert_eq!(env.read_token_bytes(), before);
}

#[test]
fn a_server_echoing_the_token_cannot_leak_it() {
    let srv = scripted(|r, tok| {
        Reply::json(
            403,
            &json!({"errors": [format!("bad token {tok} at {}", r.target), format!("header {tok}")]}),
        )
    });
    let mut env = Env::new(&srv.url());
    let m = env.metrics_file().display().to_string();
    env.setenv("VTR_METRICS_TEXTFILE", &m);
    env.write_token(&fake_token(OLD));
    let out = env.run(&["--json"]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.line().contains("bad token *** at"), "{out:#?}");
    // Also status and dry-run.
    assert_eq!(env.run(&["status"]).code, 2);
    assert_eq!(env.run(&["status", "--json"]).code, 2);
    assert_eq!(env.run(&["run", "--dry-run"]).code, 1);
}

#[test]
fn unsafe_json_fields_do_not_inject_lines() {
    // A display name with a newline is rendered with q() on the one log line.
    let srv = scripted(|r, _| match r.path() {
        "/v1/auth/token/lookup-self" => Reply::json(
            200,
            &lookup_json("evil\nOK renewed (dn=x)", &["default"], "a"),
        ),
        _ => Reply::json(403, &json!({"errors": ["permission denied"]})),
    });
    let env = Env::new(&srv.url());
    env.write_token(&fake_token(OLD));
    let out = env.run(&[]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out
        .line()
        .starts_with("DRIFT: ~/.vault-token is dn=$'evil\\nOK renewed (dn=x)'"));
}

#[test]
fn namespace_header_is_sent_on_every_request() {
    let srv = scripted(|r, _| match r.path() {
        "/v1/auth/token/lookup-self" => Reply::json(200, &ours()),
        _ => Reply::json(200, &renew_ok()),
    });
    let env = Env::new(&srv.url());
    env.write_token(&fake_token('S'));
    let out = env.run(&["--namespace", "team-a/"]);
    assert_eq!(out.code, 0, "{out:#?}");
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    for r in reqs {
        assert_eq!(r.header("X-Vault-Namespace"), Some("team-a/"));
    }
}

#[test]
fn heal_replaces_a_symlinked_token_file_not_its_target() {
    let srv = heal_server(minted);
    let env = foreign_env(&srv);
    let real = env.dir.path().join("real-token");
    std::fs::rename(env.token_file(), &real).unwrap();
    std::os::unix::fs::symlink(&real, env.token_file()).unwrap();
    let out = env.run(&[]);
    assert_eq!(out.code, 0, "{out:#?}");
    let meta = std::fs::symlink_metadata(env.token_file()).unwrap();
    assert!(meta.file_type().is_file(), "the link itself is replaced");
    assert_eq!(mode(&env.token_file()), 0o600);
    assert_eq!(env.read_token_bytes(), fake_token(NEW).as_bytes());
    assert_eq!(
        std::fs::read(&real).unwrap(),
        format!("{}\n", fake_token(OLD)).into_bytes()
    );
}

#[test]
fn unwritable_home_fails_the_heal_and_revokes_the_minted_token() {
    testkit::require_bin("unshare", &[], "apt-get install -y util-linux");
    let new = fake_token(NEW);
    let srv = scripted(move |r, tok| match r.path() {
        "/v1/auth/token/lookup-self" if tok == new => Reply::json(200, &ours()),
        "/v1/auth/token/lookup-self" => Reply::json(200, &lookup_json("token", &["root"], "a")),
        "/v1/auth/token/create" => minted(),
        "/v1/auth/token/revoke-self" => Reply::new(204),
        _ => Reply::new(404),
    });
    let env = foreign_env(&srv);
    let before = env.read_token_bytes();
    // A private mount namespace where $HOME is a read-only bind mount (EROFS on the temp file).
    let home = env.home().display().to_string();
    let script = format!(
        "mount --bind '{home}' '{home}' && mount -o remount,bind,ro '{home}' '{home}' && exec \"$@\""
    );
    let out = env.run_via(&["unshare", "-m", "sh", "-c", &script, "sh"], &[]);
    assert_eq!(out.code, 1, "{out:#?} (needs root: unshare -m + mount)");
    let line = out.line();
    assert!(
        line.starts_with("FAIL: heal could not write ~/.vault-token: ")
            && line.contains("Read-only file system")
            && line.ends_with("; minted token revoked"),
        "{line}"
    );
    assert_eq!(env.read_token_bytes(), before);
    let last = srv.requests().pop().unwrap();
    assert_eq!(last.path(), "/v1/auth/token/revoke-self");
    assert_eq!(last.header("X-Vault-Token"), Some(fake_token(NEW).as_str()));
    let names: Vec<_> = std::fs::read_dir(env.home()).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "no temp file may be left: {names:?}");
}
