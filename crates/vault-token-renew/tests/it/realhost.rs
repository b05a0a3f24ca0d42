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
