//! `vault-token-renew`: keep this user's periodic Vault/OpenBao token alive (spec
//! `vault-token-renew.md`). `run` wires config → I/O → decide → report and owns the exit code.

pub mod cli;
pub mod config;
pub mod decide;
pub mod entry;
pub mod metrics;
pub mod quote;
pub mod report;
pub mod state;
pub mod status;
pub mod tokenfile;
pub mod vault;

use cli::{Cli, Cmd, Opts};
use config::{load_user_map, Paths, VaultSettings};
use decide::{classify_mint_failure, is_ours, parse_lookup, MintFailure, Scope, TokenInfo};
use homelab_core::fsx::{try_lock, LockError};
use homelab_core::Secret;
use report::{Outcome, Reporter, RunResult, Sweep};
use serde_json::{json, Value};
use vault::{HttpVault, TokenApi, VaultError};

/// Entry point: returns the process exit code (see `cli::EXIT_CODES`).
pub fn run(cli: Cli) -> i32 {
    warn_env_tokens();
    match cli.command {
        None => run_cmd(&cli.opts, false),
        Some(Cmd::Run(a)) => run_cmd(&cli.opts, a.dry_run),
        Some(Cmd::Status) => status::status(&cli.opts),
    }
}

/// §2.1: VAULT_TOKEN/BAO_TOKEN are ignored; say so once.
fn warn_env_tokens() {
    for v in ["VAULT_TOKEN", "BAO_TOKEN"] {
        if std::env::var_os(v).is_some_and(|x| !x.is_empty()) {
            eprintln!(
                "WARNING: {v} is set and ignored: vault-token-renew always uses ~/.vault-token"
            );
        }
    }
}

fn print_json(v: &Value) {
    println!("{v}");
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn run_cmd(opts: &Opts, dry_run: bool) -> i32 {
    let paths = match Paths::resolve(opts) {
        Ok(p) => p,
        Err(e) => {
            // No home → no log file: stderr only.
            let text = report::config_failed(&e);
            eprintln!("{} {text}", homelab_core::log::timestamp());
            if opts.json {
                print_json(&Outcome::fail(RunResult::Fail, text).to_json());
            }
            return 1;
        }
    };
    if dry_run {
        return dry_run_cmd(opts, &paths);
    }
    let _lock = match try_lock(&paths.lock_file) {
        Ok(g) => g,
        Err(LockError::Busy) => {
            eprintln!("{}", report::skip(&paths.lock_file));
            if opts.json {
                print_json(
                    &json!({"result": "skipped", "dn": null, "ttl": null, "swept": 0, "error": null}),
                );
            }
            return 0;
        }
        Err(LockError::Io(e)) => {
            let mut rep = Reporter::new(&paths.log_file);
            let text = format!("FAIL: lock {}: {e}", paths.lock_file.display());
            rep.line(&text);
            if opts.json {
                print_json(&Outcome::fail(RunResult::Fail, text).to_json());
            }
            return 1;
        }
    };
    let mut rep = Reporter::new(&paths.log_file);
    let outcome = renew(opts, &paths, &mut rep);
    for w in metrics::publish(
        &outcome,
        now_unix(),
        &paths.state_file,
        opts.metrics_textfile
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty()),
        opts.pushgateway_url.as_deref().filter(|u| !u.is_empty()),
        &paths.user,
    ) {
        eprintln!("{w}");
    }
    if opts.json {
        print_json(&outcome.to_json());
    }
    if outcome.result.success() && !rep.log_failed {
        0
    } else {
        1
    }
}

/// Everything before the first HTTP call: config, user map, scope, token file.
pub struct Prepared {
    pub vault: VaultSettings,
    pub scope: Scope,
    pub token: Secret,
}

/// Steps 2–4 of §4; `Err` carries the FAIL text (no HTTP has happened).
pub fn prepare(opts: &Opts, paths: &Paths) -> Result<Prepared, String> {
    let vault = VaultSettings::from_opts(opts).map_err(|e| report::config_failed(&e))?;
    let map = load_user_map(&paths.config_file, nix::unistd::geteuid().as_raw())
        .map_err(|e| report::config_failed(&e))?;
    let scope = decide::resolve(&map, &paths.user)
        .ok_or_else(|| report::unmapped(&paths.user, &map.source))?;
    let read =
        tokenfile::read(&paths.token_file).map_err(|p| report::lookup_failed(&p.to_string()))?;
    if let Some(w) = read.warning {
        eprintln!("{w}");
    }
    Ok(Prepared {
        vault,
        scope,
        token: read.token,
    })
}

fn client(p: &Prepared) -> Result<HttpVault, String> {
    HttpVault::new(&p.vault)
        .map_err(|e| format!("FAIL: config TLS (VAULT_CACERT/VAULT_CAPATH/VAULT_CLIENT_CERT): {e}"))
}

/// Look a token up and parse the answer; a 2xx without `data` is an error at this step.
fn lookup(api: &dyn TokenApi, token: &Secret) -> Result<(Value, TokenInfo), VaultError> {
    let v = api.lookup_self(token)?;
    let info = parse_lookup(&v).map_err(|w| vault::shape_error("GET", vault::LOOKUP_SELF, &w))?;
    Ok((v, info))
}

/// §4 steps 2–8 (the lock is held by the caller).
fn renew(opts: &Opts, paths: &Paths, rep: &mut Reporter) -> Outcome {
    let p = match prepare(opts, paths) {
        Ok(p) => p,
        Err(text) => {
            rep.line(&text);
            return Outcome::fail(RunResult::Fail, text);
        }
    };
    let api = match client(&p) {
        Ok(a) => a,
        Err(text) => {
            rep.line(&text);
            return Outcome::fail(RunResult::Fail, text);
        }
    };
    let ctx = RunCtx {
        token_file: &paths.token_file,
        state_file: &paths.state_file,
        min_ttl: p.vault.min_ttl,
        sweep_budget: p.vault.sweep_budget,
    };
    renew_with(&api, &p.scope, &p.token, &ctx, rep)
}

/// What a run needs besides the API, the scope and the token.
pub struct RunCtx<'a> {
    pub token_file: &'a std::path::Path,
    pub state_file: &'a std::path::Path,
    /// Issue 15 item 4.
    pub min_ttl: i64,
    /// Issue 15 item 7: the full accessor scan stops after this.
    pub sweep_budget: std::time::Duration,
}

/// Steps 5–8 against any [`TokenApi`].
pub fn renew_with(
    api: &dyn TokenApi,
    scope: &Scope,
    token: &Secret,
    ctx: &RunCtx,
    rep: &mut Reporter,
) -> Outcome {
    let min_ttl = ctx.min_ttl;
    let fail = |rep: &mut Reporter, result, text: String| {
        rep.line(&text);
        Outcome::fail(result, text)
    };
    let info = match lookup(api, token) {
        Ok((_, i)) => i,
        Err(e) => return fail(rep, RunResult::Fail, report::lookup_failed(&e.text)),
    };
    if !is_ours(scope, &info) {
        return heal(api, scope, token, &info, ctx, rep);
    }
    if info.renewable == Some(false) {
        let mut o = fail(
            rep,
            RunResult::NotRenewable,
            report::not_renewable(&info.display_name),
        );
        o.dn = Some(info.display_name);
        o.ttl = info.ttl;
        o.period = info.period;
        return o;
    }
    let renewed = api.renew_self(token).and_then(|v| {
        if v.get("auth").is_some_and(Value::is_object) {
            Ok(v)
        } else {
            Err(vault::shape_error("PUT", vault::RENEW_SELF, "auth missing"))
        }
    });
    match renewed {
        Ok(v) => {
            let ttl = v["auth"]["lease_duration"].as_i64();
            let warnings: Vec<String> = v["warnings"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|w| w.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let suffix = report::warnings_suffix(&warnings);
            let mut o = Outcome {
                result: RunResult::Ok,
                dn: Some(info.display_name.clone()),
                ttl,
                period: info.period,
                swept: 0,
                error: None,
            };
            if decide::extended(ttl, min_ttl) {
                rep.line(&format!("{}{suffix}", report::ok(&info.display_name, ttl)));
            } else {
                let text = format!(
                    "{}{suffix}",
                    report::not_extended(
                        ttl,
                        // OpenBao's lookup omits `period` for a non-periodic token.
                        Some(info.period.unwrap_or(0)),
                        Some(info.explicit_max_ttl.unwrap_or(0)),
                        &expires_at(ttl),
                        &scope.hint
                    )
                );
                rep.line(&text);
                o.result = RunResult::Fail;
                o.error = Some(text);
            }
            o
        }
        Err(e) => {
            let mut o = fail(rep, RunResult::Fail, report::renew_failed(&e.text));
            o.dn = Some(info.display_name);
            o
        }
    }
}

/// RFC 3339 UTC time `ttl` seconds from now (`?` when the TTL is unknown).
fn expires_at(ttl: Option<i64>) -> String {
    ttl.and_then(|t| {
        let at = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()?
            .checked_add(time::Duration::seconds(t))?;
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "?".to_string())
}

/// The mint request of §3/§3.5.
pub fn mint_body(scope: &Scope) -> Value {
    json!({
        "policies": scope.mint_policies,
        "no_parent": true,
        "period": scope.period,
        "display_name": scope.mint_display_name,
        "renewable": true,
    })
}

fn revoke_new(api: &dyn TokenApi, new: &Secret) -> String {
    report::revoke_suffix(&api.revoke_self(new).map_err(|e| e.text))
}

/// §5: re-mint with the foreign token's authority, check, persist, sweep.
fn heal(
    api: &dyn TokenApi,
    scope: &Scope,
    foreign: &Secret,
    finfo: &TokenInfo,
    ctx: &RunCtx,
    rep: &mut Reporter,
) -> Outcome {
    let token_file = ctx.token_file;
    let dn = finfo.display_name.clone();
    let out = |rep: &mut Reporter, result, text: String| {
        rep.line(&text);
        let mut o = Outcome::fail(result, text);
        o.dn = Some(dn.clone());
        o
    };
    // 5.2 mint.
    let created = match api.create(foreign, &mint_body(scope)) {
        Ok(v) => v,
        Err(e) => {
            let text = match classify_mint_failure(e.status) {
                MintFailure::Denied => report::drift_denied(&dn, &e.text, &scope.hint),
                MintFailure::Failed => report::drift_failed(&dn, &e.text, &scope.hint),
            };
            return out(rep, RunResult::Drift, text);
        }
    };
    let new = match created["auth"]["client_token"].as_str() {
        Some(t) if !t.is_empty() => Secret::new(t),
        _ => {
            let e = format!("POST {}: answer has no auth.client_token", vault::CREATE);
            return out(
                rep,
                RunResult::Drift,
                report::drift_denied(&dn, &e, &scope.hint),
            );
        }
    };
    // 5.3 sanity with the new token.
    let ninfo = match lookup(api, &new) {
        Ok((_, i)) => i,
        Err(e) => {
            let suffix = revoke_new(api, &new);
            return out(
                rep,
                RunResult::Fail,
                report::heal_lookup_failed(&e.text, &suffix),
            );
        }
    };
    if !is_ours(scope, &ninfo) {
        let suffix = revoke_new(api, &new);
        let text =
            report::heal_unexpected(&ninfo.display_name, &decide::policy_csv(&ninfo), &suffix);
        return out(rep, RunResult::Fail, text);
    }
    // §7: someone else replaced the file meanwhile → do not overwrite.
    if tokenfile::current(token_file).as_ref() != Some(foreign) {
        let suffix = revoke_new(api, &new);
        return out(rep, RunResult::Fail, report::changed_during_heal(&suffix));
    }
    // 5.4 persist.
    if let Err(e) = tokenfile::write(token_file, &new) {
        let suffix = revoke_new(api, &new);
        return out(
            rep,
            RunResult::Fail,
            report::write_failed(&e.to_string(), &suffix),
        );
    }
    // Remember the new accessor at once: a crash mid-sweep must not forget it (item 7).
    let (mut st, warn) = state::load(ctx.state_file);
    if let Some(w) = warn {
        eprintln!("{w}");
    }
    let previous = st.minted.clone();
    if state::valid_accessor(&ninfo.accessor) && !st.minted.contains(&ninfo.accessor) {
        st.minted.push(ninfo.accessor.clone());
    }
    if let Some(w) = state::save(ctx.state_file, &st) {
        eprintln!("{w}");
    }
    // 5.5 sweep with the new token's authority.
    let (sweep, remember) = sweep(
        api,
        &new,
        &scope.expected_display_name,
        &ninfo.accessor,
        &previous,
        ctx.sweep_budget,
    );
    st.minted = remember;
    if let Some(w) = state::save(ctx.state_file, &st) {
        eprintln!("{w}");
    }
    if let Sweep::Budget { left, total, .. } = sweep {
        eprintln!(
            "WARNING: accessor sweep stopped at its time budget ({}s, VTR_SWEEP_BUDGET) with {left} of {total} accessors unchecked; the next heal scans again",
            ctx.sweep_budget.as_secs()
        );
    }
    rep.line(&report::healed(&dn, sweep));
    Outcome {
        result: RunResult::Healed,
        dn: Some(ninfo.display_name),
        ttl: ninfo.ttl,
        period: ninfo.period,
        swept: sweep.count(),
        error: None,
    }
}

/// Look up one accessor and revoke it when it is a stale copy of our periodic token.
/// `Err(true)` = the accessor no longer exists (HTTP 400 "invalid accessor").
fn revoke_if_stale(
    api: &dyn TokenApi,
    new: &Secret,
    expected_dn: &str,
    keep: &str,
    key: &str,
) -> Result<bool, bool> {
    let v = api
        .lookup_accessor(new, key)
        .map_err(|e| e.status == Some(400))?;
    let info = parse_lookup(&v).map_err(|_| false)?;
    if !decide::is_stale(expected_dn, keep, &info) {
        return Ok(false);
    }
    api.revoke_accessor(new, key)
        .map(|_| true)
        .map_err(|_| false)
}

/// §5.5 plus issue 15 item 7: revoke older tokens carrying this user's periodic name,
/// fail-safe; first the accessors this tool minted (no LIST needed), then the full scan,
/// which stops at `budget`. Returns the sweep and the minted accessors to remember (the
/// kept one plus those that could not be settled).
pub fn sweep(
    api: &dyn TokenApi,
    new: &Secret,
    expected_dn: &str,
    keep: &str,
    minted: &[String],
    budget: std::time::Duration,
) -> (Sweep, Vec<String>) {
    if keep.is_empty() {
        return (Sweep::Skipped, minted.to_vec());
    }
    let start = std::time::Instant::now();
    let mut remember: Vec<String> = Vec::new();
    let mut revoked = 0;
    let mut seen = std::collections::HashSet::new();
    for a in minted.iter().filter(|a| a.as_str() != keep) {
        seen.insert(a.as_str());
        match revoke_if_stale(api, new, expected_dn, keep, a) {
            Ok(true) => revoked += 1,
            // Not ours any more, or gone: forget it.
            Ok(false) | Err(true) => {}
            Err(false) => remember.push(a.clone()),
        }
    }
    remember.push(keep.to_string());
    let Ok(keys) = api.list_accessors(new) else {
        let s = if revoked > 0 {
            Sweep::ListDenied(revoked)
        } else {
            Sweep::Skipped
        };
        return (s, remember);
    };
    let todo: Vec<&String> = keys
        .iter()
        .filter(|k| k.as_str() != keep && !seen.contains(k.as_str()))
        .collect();
    for (i, key) in todo.iter().enumerate() {
        if start.elapsed() >= budget {
            let s = Sweep::Budget {
                revoked,
                left: (todo.len() - i) as u64,
                total: todo.len() as u64,
            };
            return (s, remember);
        }
        if let Ok(true) = revoke_if_stale(api, new, expected_dn, keep, key) {
            revoked += 1;
        }
    }
    (Sweep::Revoked(revoked), remember)
}

/// Would the token a heal mints be allowed to LIST accessors? Evaluates the mint policies
/// (and `default`) read with the foreign token; `Err` when a policy cannot be read.
fn minted_list_permitted(
    api: &dyn TokenApi,
    foreign: &Secret,
    scope: &Scope,
) -> Result<bool, String> {
    let mut rules = Vec::new();
    let mut names: Vec<&str> = scope.mint_policies.iter().map(String::as_str).collect();
    if !names.contains(&"default") {
        names.push("default");
    }
    for n in names {
        if n == "root" {
            return Ok(true);
        }
        let v = api
            .read_policy(foreign, n)
            .map_err(|e| format!("policy {n} not readable with this token: {}", e.text))?;
        let hcl = v["data"]["policy"]
            .as_str()
            .or_else(|| v["policy"].as_str())
            .or_else(|| v["data"]["rules"].as_str())
            .unwrap_or("");
        rules.extend(decide::policy_rules(hcl));
    }
    Ok(decide::list_permitted(&decide::list_caps(
        &rules,
        "auth/token/accessors/",
    )))
}

/// §8.2: decide and report only; nothing is written, renewed, minted or revoked.
fn dry_run_cmd(opts: &Opts, paths: &Paths) -> i32 {
    let mut doc = json!({"dry_run": true, "result": "would_fail", "dn": null, "ttl": null,
        "create_permitted": null, "list_permitted": null, "error": null});
    let (code, text) = dry_run_inner(opts, paths, &mut doc);
    if opts.json {
        print_json(&doc);
    } else {
        println!("DRY-RUN: {text}");
    }
    code
}

fn dry_run_inner(opts: &Opts, paths: &Paths, doc: &mut Value) -> (i32, String) {
    let failed = |doc: &mut Value, text: String| {
        doc["error"] = json!(text);
        (1, format!("a real run would fail: {text}"))
    };
    let p = match prepare(opts, paths) {
        Ok(p) => p,
        Err(t) => return failed(doc, t),
    };
    let api = match client(&p) {
        Ok(a) => a,
        Err(t) => return failed(doc, t),
    };
    let info = match lookup(&api, &p.token) {
        Ok((_, i)) => i,
        Err(e) => return failed(doc, report::lookup_failed(&e.text)),
    };
    doc["dn"] = json!(info.display_name);
    doc["ttl"] = json!(info.ttl);
    if is_ours(&p.scope, &info) {
        if info.renewable == Some(false) {
            return failed(doc, report::not_renewable(&info.display_name));
        }
        doc["result"] = json!("would_renew");
        let ttl = info.ttl.map_or("?".to_string(), |t| t.to_string());
        return (
            0,
            format!("would renew dn={} (ttl={ttl}s)", info.display_name),
        );
    }
    let paths_q = ["auth/token/create", "auth/token/accessors"];
    let caps = match api.capabilities_self(&p.token, &paths_q) {
        Ok(v) => v,
        Err(e) => return failed(doc, format!("capabilities check: {}", e.text)),
    };
    let list = |path: &str| -> Vec<String> {
        let v = caps
            .get("data")
            .and_then(|d| d.get(path))
            .or_else(|| caps.get(path));
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let create_caps = list(paths_q[0]);
    let create = decide::create_permitted(&create_caps);
    // The sweep runs with the minted token, whose policies are the mint list plus
    // `default`: judge those, read with the foreign token (issue 15).
    let listing = minted_list_permitted(&api, &p.token, &p.scope);
    doc["create_permitted"] = json!(create);
    doc["list_permitted"] = match &listing {
        Ok(b) => json!(b),
        Err(_) => Value::Null,
    };
    doc["result"] = json!(if create { "would_heal" } else { "would_drift" });
    let list_text = match &listing {
        Ok(true) => "permitted for the minted token (list+sudo on auth/token/accessors)".to_string(),
        Ok(false) => "denied for the minted token (no list+sudo on auth/token/accessors: the sweep would be skipped)".to_string(),
        Err(e) => format!("unknown ({e})"),
    };
    let text = format!(
        "~/.vault-token is dn={} (foreign) \u{2014} heal would {}: auth/token/create capabilities [{}]; accessor list {list_text}",
        quote::q(&info.display_name),
        if create { "likely succeed" } else { "be denied" },
        create_caps.join(","),
    );
    if !create {
        doc["error"] = json!(text);
    }
    (i32::from(!create), text)
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::decide::props::arb_json;
    use proptest::prelude::*;
    use std::cell::RefCell;

    /// Answers lookup-self with `lookup`, renew-self with `renew`, lookup-accessor from
    /// `by_accessor`; records revocations. Anything else fails.
    struct Fake {
        lookup: Value,
        renew: Value,
        accessors: Vec<String>,
        by_accessor: Vec<Value>,
        revoked: RefCell<Vec<String>>,
    }

    fn no() -> VaultError {
        VaultError {
            status: Some(500),
            text: "not scripted".into(),
        }
    }

    impl TokenApi for Fake {
        fn lookup_self(&self, _: &Secret) -> Result<Value, VaultError> {
            Ok(self.lookup.clone())
        }
        fn renew_self(&self, _: &Secret) -> Result<Value, VaultError> {
            Ok(self.renew.clone())
        }
        fn create(&self, _: &Secret, _: &Value) -> Result<Value, VaultError> {
            Err(no())
        }
        fn list_accessors(&self, _: &Secret) -> Result<Vec<String>, VaultError> {
            Ok(self.accessors.clone())
        }
        fn lookup_accessor(&self, _: &Secret, a: &str) -> Result<Value, VaultError> {
            let i = self.accessors.iter().position(|x| x == a).ok_or_else(no)?;
            self.by_accessor.get(i).cloned().ok_or_else(no)
        }
        fn revoke_accessor(&self, _: &Secret, a: &str) -> Result<(), VaultError> {
            self.revoked.borrow_mut().push(a.to_string());
            Ok(())
        }
        fn revoke_self(&self, _: &Secret) -> Result<(), VaultError> {
            Err(no())
        }
        fn capabilities_self(&self, _: &Secret, _: &[&str]) -> Result<Value, VaultError> {
            Err(no())
        }
        fn read_policy(&self, _: &Secret, _: &str) -> Result<Value, VaultError> {
            Err(no())
        }
    }

    fn scope() -> Scope {
        Scope {
            user: "u".into(),
            required_policy: "p".into(),
            mint_policies: vec!["p".into()],
            mint_display_name: "devvm-u".into(),
            expected_display_name: "token-devvm-u".into(),
            period: "768h".into(),
            hint: "h".into(),
        }
    }

    fn fake(renew: Value, accessors: Vec<String>, by_accessor: Vec<Value>) -> Fake {
        Fake {
            lookup: json!({"data": {"display_name": "token-devvm-u", "policies": ["p"], "renewable": true, "period": 2764800}}),
            renew,
            accessors,
            by_accessor,
            revoked: RefCell::new(Vec::new()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any renew-self answer: no panic; OK exactly when it has an `auth` object, with the TTL
        /// read only from an integer `auth.lease_duration`; otherwise a typed FAIL naming the
        /// shape problem.
        #[test]
        fn renew_answer_any_json(doc in arb_json(), auth in arb_json()) {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("log");
            for answer in [doc.clone(), json!({"auth": auth.clone()}), json!({"auth": {"lease_duration": auth}})] {
                let mut rep = Reporter::new(&log);
                let (t, st) = (dir.path().join("t"), dir.path().join("st"));
                let ctx = RunCtx { token_file: &t, state_file: &st, min_ttl: 1, sweep_budget: std::time::Duration::from_secs(60) };
                let o = renew_with(&fake(answer.clone(), vec![], vec![]), &scope(), &Secret::new("s.tok".to_string()), &ctx, &mut rep);
                if answer.get("auth").is_some_and(Value::is_object) {
                    // Issue 15 item 4: OK only when a TTL ≥ VTR_MIN_TTL (here 1 s) is known.
                    let want = if answer["auth"]["lease_duration"].as_i64().is_some_and(|t| t >= 1) { RunResult::Ok } else { RunResult::Fail };
                    prop_assert_eq!(o.result, want);
                    prop_assert_eq!(o.ttl, answer["auth"]["lease_duration"].as_i64());
                    prop_assert_eq!(o.error.is_none(), want == RunResult::Ok);
                } else {
                    prop_assert_eq!(o.result, RunResult::Fail);
                    let e = o.error.unwrap();
                    prop_assert!(e.contains("invalid JSON from /v1/auth/token/renew-self (auth missing)"), "{}", e);
                }
            }
        }

        /// Any lookup-accessor answers during a sweep: no panic, the kept accessor is never
        /// revoked, and only answers naming our token under another accessor are revoked.
        #[test]
        fn sweep_any_answers(
            answers in proptest::collection::vec(prop_oneof![
                arb_json(),
                "[a-c]{1,2}".prop_map(|a| json!({"data": {"display_name": "token-devvm-u", "accessor": a}})),
            ], 0..6),
        ) {
            let accessors: Vec<String> = (0..answers.len()).map(|i| format!("k{i}")).chain(["keep".to_string()]).collect();
            let f = fake(Value::Null, accessors, answers.clone());
            let (s, remember) = sweep(&f, &Secret::new("s.new".to_string()), "token-devvm-u", "keep", &[], std::time::Duration::from_secs(60));
            prop_assert_eq!(remember, vec!["keep".to_string()]);
            let revoked = f.revoked.borrow();
            prop_assert!(!revoked.iter().any(|a| a == "keep"));
            let want: Vec<String> = answers.iter().enumerate().filter(|(_, a)| {
                parse_lookup(a).is_ok_and(|i| decide::is_stale("token-devvm-u", "keep", &i))
            }).map(|(i, _)| format!("k{i}")).collect();
            prop_assert_eq!(&*revoked, &want);
            prop_assert_eq!(s, Sweep::Revoked(want.len() as u64));
        }
    }
}
