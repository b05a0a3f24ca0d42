//! Pure decisions over plain data (spec §2.3, §3.6, §4 step 6, §5.5, §8.1, §8.2): no I/O, no
//! clock. Every table case of §10.1 is a unit test at the bottom of this file.

use serde_json::Value;

/// One OS user's entry of the user map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub required_policy: String,
    pub mint_policies: Vec<String>,
    pub remint_hint: Option<String>,
}

/// The whole user map: built-in (§2.3) or from the config file (§2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMap {
    pub period: String,
    pub display_name_prefix: String,
    pub users: Vec<(String, UserEntry)>,
    /// `built-in table` or the config file path, for the L-MAP line.
    pub source: String,
}

pub const DEFAULT_PERIOD: &str = "768h";
pub const DEFAULT_PREFIX: &str = "devvm-";

impl UserMap {
    /// The compiled-in parity table of §2.3.
    pub fn builtin() -> Self {
        let e = |req: &str, mint: &[&str]| UserEntry {
            required_policy: req.to_string(),
            mint_policies: mint.iter().map(|s| s.to_string()).collect(),
            remint_hint: None,
        };
        UserMap {
            period: DEFAULT_PERIOD.to_string(),
            display_name_prefix: DEFAULT_PREFIX.to_string(),
            users: vec![
                (
                    "wizard".into(),
                    e("vault-admin", &["vault-admin", "sops-admin"]),
                ),
                (
                    "emo".into(),
                    e("personal-emo", &["default", "personal-emo", "projects-emo"]),
                ),
            ],
            source: "built-in table".to_string(),
        }
    }
}

/// Everything a run needs to know about the user's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub user: String,
    pub required_policy: String,
    pub mint_policies: Vec<String>,
    pub mint_display_name: String,
    pub expected_display_name: String,
    pub period: String,
    pub hint: String,
}

/// Map an OS user to its scope; `None` = unmapped (refuse, §4 step 3).
pub fn resolve(map: &UserMap, user: &str) -> Option<Scope> {
    let (_, e) = map.users.iter().find(|(u, _)| u == user)?;
    let mint_display_name = format!("{}{user}", map.display_name_prefix);
    let expected_display_name = vault_display_name(&mint_display_name);
    let hint = e
        .remint_hint
        .clone()
        .unwrap_or_else(|| manual_hint(&map.period, &e.mint_policies, &mint_display_name));
    Some(Scope {
        user: user.to_string(),
        required_policy: e.required_policy.clone(),
        mint_policies: e.mint_policies.clone(),
        mint_display_name,
        expected_display_name,
        period: map.period.clone(),
        hint,
    })
}

/// What Vault stores for a requested display name (§2.3.1): `token-` prefix, every character
/// outside `[A-Za-z0-9-]` replaced by `-`, one trailing `-` trimmed.
pub fn vault_display_name(requested: &str) -> String {
    let full: String = format!("token-{requested}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    full.strip_suffix('-').map(str::to_string).unwrap_or(full)
}

/// The generated manual re-mint command (§5.1).
pub fn manual_hint(period: &str, mint_policies: &[String], mint_display_name: &str) -> String {
    let pol: Vec<String> = mint_policies
        .iter()
        .map(|p| format!("-policy={p}"))
        .collect();
    format!(
        "vault login -method=oidc && vault token create -orphan -period={period} {} -display-name={mint_display_name} -field=token > ~/.vault-token && chmod 600 ~/.vault-token",
        pol.join(" ")
    )
}

/// The fields of a lookup answer the tool uses (§3 table, §3.6).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenInfo {
    pub display_name: String,
    /// `data.policies` followed by `data.identity_policies`, non-strings ignored.
    pub policies: Vec<String>,
    pub accessor: String,
    pub ttl: Option<i64>,
    pub period: Option<i64>,
    pub explicit_max_ttl: Option<i64>,
    pub renewable: Option<bool>,
    pub orphan: Option<bool>,
    pub expire_time: Option<String>,
    pub token_type: Option<String>,
}

fn strings(v: &Value) -> impl Iterator<Item = String> + '_ {
    v.as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
}

fn str_field(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Parse a lookup answer (`lookup-self` or `lookup-accessor`). A missing `data` object is an
/// error: missing fields are never taken for "ours" (§7).
pub fn parse_lookup(doc: &Value) -> Result<TokenInfo, String> {
    let d = doc
        .get("data")
        .filter(|d| d.is_object())
        .ok_or("answer has no data object")?;
    Ok(TokenInfo {
        display_name: str_field(&d["display_name"]),
        policies: strings(&d["policies"])
            .chain(strings(&d["identity_policies"]))
            .collect(),
        accessor: str_field(&d["accessor"]),
        ttl: d["ttl"].as_i64(),
        period: d["period"].as_i64(),
        explicit_max_ttl: d["explicit_max_ttl"].as_i64(),
        renewable: d["renewable"].as_bool(),
        orphan: d["orphan"].as_bool(),
        expire_time: d["expire_time"].as_str().map(str::to_string),
        token_type: d["type"].as_str().map(str::to_string),
    })
}

/// The policy set joined by `,` (the `policies=` part of L-HBAD).
pub fn policy_csv(info: &TokenInfo) -> String {
    info.policies.join(",")
}

/// Drift guard (§4 step 6): exact display name AND the required policy as an exact element.
pub fn is_ours(scope: &Scope, info: &TokenInfo) -> bool {
    info.display_name == scope.expected_display_name
        && info.policies.contains(&scope.required_policy)
}

/// Sweep rule (§5.5b): stale iff keep is known, the name is ours, and the accessor is another.
pub fn is_stale(expected_display_name: &str, keep_accessor: &str, info: &TokenInfo) -> bool {
    !keep_accessor.is_empty()
        && info.display_name == expected_display_name
        && !info.accessor.is_empty()
        && info.accessor != keep_accessor
}

/// How a failed mint is reported (§5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintFailure {
    /// 400/403 or no client token: the foreign token lacks authority (L-DRIFT).
    Denied,
    /// Transport, 5xx, bad JSON: may work next run (L-DRIFT2).
    Failed,
}

pub fn classify_mint_failure(status: Option<u16>) -> MintFailure {
    match status {
        Some(400 | 403) => MintFailure::Denied,
        _ => MintFailure::Failed,
    }
}

/// Dry-run (§8.2): does a capability list allow an orphan create?
pub fn create_permitted(caps: &[String]) -> bool {
    let has = |c: &str| caps.iter().any(|x| x == c);
    has("root") || (has("sudo") && (has("create") || has("update")))
}

/// What to do with a 3xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// Follow; `cross` when it leaves the current origin.
    Follow {
        cross: bool,
    },
    Refuse(String),
}

/// Redirect rule (issue 15 item 6, supersedes spec §3.3's same-origin-only rule). Same
/// origin: 307/308 as before. Another origin: only the HA standby case the CLI handles — a
/// 307 (an OpenBao standby forwards clients with 307, `http/handler.go`
/// `respondStandby`), followed once (openbao/openbao v2.6.2 `api/client.go` `rawRequest`
/// allows a single redirect) and only to https, where the same client — same CA, same
/// client certificate — must verify the active node. Anything else is refused: the token
/// never travels to a host by a redirect the CLI would not follow, nor over plain http.
pub fn redirect(
    status: u16,
    here: Option<&str>,
    target: &homelab_core::http::UrlParts,
    cross_hops: u32,
) -> Redirect {
    if here == Some(target.origin().as_str()) {
        return if matches!(status, 307 | 308) {
            Redirect::Follow { cross: false }
        } else {
            Redirect::Refuse("redirect refused (only 307/308 are followed)".to_string())
        };
    }
    if target.scheme != "https" {
        return Redirect::Refuse(
            "redirect to another host refused (plain http: the token only travels over verified TLS)".into(),
        );
    }
    if status != 307 {
        return Redirect::Refuse(
            "redirect to another host refused (the token is only sent to VAULT_ADDR or, once, to the active node a standby's 307 names)".into(),
        );
    }
    if cross_hops > 0 {
        return Redirect::Refuse(
            "redirect to another host refused (only one redirect to another host is followed)"
                .into(),
        );
    }
    Redirect::Follow { cross: true }
}

/// Issue 15 item 4: a renewal counts only when the server's answer says the token now lives
/// at least `min_ttl` seconds; an unknown TTL is doubt, and doubt is not success.
pub fn extended(ttl: Option<i64>, min_ttl: i64) -> bool {
    ttl.is_some_and(|t| t >= min_ttl)
}

/// Dry-run: does a capability list allow listing accessors? `auth/token/accessors` is a
/// root path (openbao/openbao v2.6.2 `vault/token_store.go` `Root: "accessors*"`), so LIST
/// needs `sudo` as well as `list` (issue 15).
pub fn list_permitted(caps: &[String]) -> bool {
    let has = |c: &str| caps.iter().any(|x| x == c);
    !has("deny") && (has("root") || (has("list") && has("sudo")))
}

/// `path "<pattern>" { capabilities = [...] }` rules of an HCL ACL policy (the subset the
/// dry-run needs; other stanzas are ignored).
pub fn policy_rules(hcl: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = hcl;
    while let Some(i) = rest.find("path") {
        rest = &rest[i + 4..];
        let t = rest.trim_start();
        let Some(t) = t.strip_prefix('"') else {
            continue;
        };
        let Some(end) = t.find('"') else { break };
        let pattern = t[..end].to_string();
        let after = &t[end + 1..];
        let Some(open) = after.find('{') else { break };
        let Some(close) = after[open..].find('}') else {
            break;
        };
        let body = &after[open + 1..open + close];
        rest = &after[open + close..];
        let caps = body
            .find("capabilities")
            .and_then(|c| {
                let b = &body[c..];
                let (l, r) = (b.find('[')?, b.find(']')?);
                (l < r).then(|| {
                    b[l + 1..r]
                        .split(',')
                        .map(|x| x.trim().trim_matches('"').to_string())
                        .filter(|x| !x.is_empty())
                        .collect::<Vec<_>>()
                })
            })
            .unwrap_or_default();
        out.push((pattern, caps));
    }
    out
}

fn segments_match(pattern: &str, path: &str) -> bool {
    let (p, glob) = match pattern.strip_suffix('*') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let ps: Vec<&str> = p.split('/').collect();
    let xs: Vec<&str> = path.split('/').collect();
    if glob {
        if xs.len() < ps.len() {
            return false;
        }
        let last = ps.len() - 1;
        ps.iter()
            .zip(&xs)
            .enumerate()
            .all(|(i, (a, b))| *a == "+" || if i == last { b.starts_with(a) } else { a == b })
    } else {
        ps.len() == xs.len() && ps.iter().zip(&xs).all(|(a, b)| *a == "+" || a == b)
    }
}

/// The capabilities the union of `rules` grants a LIST on `path`, following Vault's ACL
/// order (openbao/openbao v2.6.2 `vault/policy/acl.go` `AllowOperation`): an exact rule
/// (for LIST also without the trailing `/`), else the most specific glob / segment-wildcard
/// rule. Capabilities of rules with the same pattern are merged across policies.
pub fn list_caps(rules: &[(String, Vec<String>)], path: &str) -> Vec<String> {
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for (p, c) in rules {
        match merged.iter_mut().find(|(q, _)| q == p) {
            Some((_, cs)) => cs.extend(c.iter().cloned()),
            None => merged.push((p.clone(), c.clone())),
        }
    }
    let trimmed = path.trim_end_matches('/');
    if let Some((_, c)) = merged.iter().find(|(p, _)| p == path || p == trimmed) {
        return c.clone();
    }
    // Vault's priority among non-exact matches (documented ACL rules): the later the first
    // wildcard the better, then not ending in `*`, then fewer `+`, then longer.
    merged
        .iter()
        .filter(|(p, _)| p.contains('+') || p.ends_with('*'))
        .filter(|(p, _)| segments_match(p, path) || segments_match(p, trimmed))
        .max_by_key(|(p, _)| {
            (
                p.find(['+', '*']).unwrap_or(p.len()),
                !p.ends_with('*'),
                std::cmp::Reverse(p.matches('+').count()),
                p.len(),
            )
        })
        .map(|(_, c)| c.clone())
        .unwrap_or_default()
}

/// Parse a Vault duration (`768h`, `32d`, `1h30m`, `3600`) into seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return s.parse().ok();
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let mul = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mul)?)?;
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

/// `status` health (§8.1), worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Stale,
    Warning,
    Drift,
    Error,
}

impl Health {
    pub fn word(self) -> &'static str {
        match self {
            Health::Healthy => "HEALTHY",
            Health::Stale => "STALE",
            Health::Warning => "WARNING",
            Health::Drift => "DRIFT",
            Health::Error => "ERROR",
        }
    }
    pub fn exit_code(self) -> i32 {
        match self {
            Health::Healthy => 0,
            Health::Stale | Health::Warning | Health::Drift => 1,
            Health::Error => 2,
        }
    }
}

const DAY: i64 = 86_400;
/// The timer runs daily (§9); `status` warns when the period is under twice that (§8.7).
pub const RENEW_INTERVAL: i64 = DAY;

/// Health of a looked-up token plus the reasons behind a WARNING/STALE verdict. `min_ttl` is
/// VTR_MIN_TTL (default 7 days, spec §8.7's threshold): `status` warns below the same TTL that
/// makes `run` fail with "renewed but not extended" (issue 15 item 4), so the two never disagree.
pub fn health(scope: &Scope, info: &TokenInfo, min_ttl: i64) -> (Health, Vec<String>) {
    if !is_ours(scope, info) {
        return (
            Health::Drift,
            vec!["token is not this user's periodic token".into()],
        );
    }
    let mut warn = Vec::new();
    let period = info.period.unwrap_or(0);
    let ttl = info.ttl.unwrap_or(0);
    if period == 0 {
        warn.push("period is 0 (not a periodic token)".to_string());
    } else if period < 2 * RENEW_INTERVAL {
        warn.push(format!(
            "period {period}s is shorter than twice the daily renewal interval"
        ));
    }
    if info.renewable != Some(true) {
        warn.push("token is not renewable".into());
    }
    if info.orphan != Some(true) {
        warn.push("token is not an orphan".into());
    }
    if info.explicit_max_ttl.unwrap_or(0) > 0 {
        warn.push(format!(
            "explicit_max_ttl is {}s",
            info.explicit_max_ttl.unwrap_or(0)
        ));
    }
    if ttl < min_ttl {
        warn.push(if min_ttl == 7 * DAY {
            format!("ttl {ttl}s is under 7 days")
        } else {
            format!("ttl {ttl}s is under VTR_MIN_TTL ({min_ttl}s)")
        });
    }
    if !warn.is_empty() {
        return (Health::Warning, warn);
    }
    if ttl < period - 2 * DAY {
        return (
            Health::Stale,
            vec![format!(
                "ttl {ttl}s is under period − 48h: at least two daily renewals were missed"
            )],
        );
    }
    (Health::Healthy, Vec::new())
}

/// `1d 2h 3m 4s`-style rendering of seconds for humans.
pub fn human_secs(s: i64) -> String {
    if s < 0 {
        return format!("-{}", human_secs(-s));
    }
    let (d, h, m, sec) = (s / DAY, s % DAY / 3600, s % 3600 / 60, s % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if sec > 0 || parts.is_empty() {
        parts.push(format!("{sec}s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use homelab_core::http::UrlParts;

    #[test]
    fn redirect_rule() {
        let u = |s: &str| UrlParts::parse(s).unwrap();
        let here = Some("https://standby:8200");
        assert_eq!(
            redirect(307, here, &u("https://standby:8200/x"), 0),
            Redirect::Follow { cross: false }
        );
        assert_eq!(
            redirect(308, here, &u("https://standby:8200/x"), 1),
            Redirect::Follow { cross: false }
        );
        assert!(matches!(
            redirect(302, here, &u("https://standby:8200/x"), 0),
            Redirect::Refuse(_)
        ));
        assert_eq!(
            redirect(307, here, &u("https://active:8200/x"), 0),
            Redirect::Follow { cross: true }
        );
        assert!(
            matches!(redirect(307, here, &u("https://active:8200/x"), 1), Redirect::Refuse(w) if w.contains("only one"))
        );
        assert!(
            matches!(redirect(307, here, &u("http://active:8200/x"), 0), Redirect::Refuse(w) if w.contains("plain http"))
        );
        assert!(matches!(
            redirect(308, here, &u("https://active:8200/x"), 0),
            Redirect::Refuse(_)
        ));
        assert!(matches!(
            redirect(301, here, &u("https://active:8200/x"), 0),
            Redirect::Refuse(_)
        ));
    }

    use super::*;
    use serde_json::json;

    fn wizard() -> Scope {
        resolve(&UserMap::builtin(), "wizard").expect("wizard mapped")
    }
    fn emo() -> Scope {
        resolve(&UserMap::builtin(), "emo").expect("emo mapped")
    }
    fn tok(dn: &str, pols: &[&str]) -> TokenInfo {
        TokenInfo {
            display_name: dn.to_string(),
            policies: pols.iter().map(|s| s.to_string()).collect(),
            ..TokenInfo::default()
        }
    }
    fn ours_fixture() -> Value {
        json!({"data":{"display_name":"token-devvm-wizard","policies":["default","sops-admin","vault-admin"],"identity_policies":null}})
    }
    fn oidc_fixture() -> Value {
        json!({"data":{"display_name":"oidc-vbarzin","policies":["default"],"identity_policies":["sops-admin","vault-admin"]}})
    }
    fn wp_fixture() -> Value {
        json!({"data":{"display_name":"kubernetes-woodpecker-default","policies":["ci","default","terraform-state"],"identity_policies":[]}})
    }
    fn with_accessor(mut v: Value, acc: &str) -> Value {
        v["data"]["accessor"] = json!(acc);
        v
    }
    fn parsed(v: &Value) -> TokenInfo {
        parse_lookup(v).expect("parse")
    }

    // §10.1 cases 1-5.
    #[test]
    fn t01_resolve_wizard() {
        assert!(resolve(&UserMap::builtin(), "wizard").is_some());
    }
    #[test]
    fn t02_wizard_expected_display_name() {
        assert_eq!(wizard().expected_display_name, "token-devvm-wizard");
    }
    #[test]
    fn t03_wizard_required_policy() {
        assert_eq!(wizard().required_policy, "vault-admin");
    }
    #[test]
    fn t04_wizard_mint_display_name() {
        assert_eq!(wizard().mint_display_name, "devvm-wizard");
    }
    #[test]
    fn t05_wizard_mint_policies() {
        assert_eq!(wizard().mint_policies, ["vault-admin", "sops-admin"]);
    }
    // 6-10.
    #[test]
    fn t06_resolve_emo() {
        assert!(resolve(&UserMap::builtin(), "emo").is_some());
    }
    #[test]
    fn t07_emo_expected_display_name() {
        assert_eq!(emo().expected_display_name, "token-devvm-emo");
    }
    #[test]
    fn t08_emo_required_policy() {
        assert_eq!(emo().required_policy, "personal-emo");
    }
    #[test]
    fn t09_emo_mint_display_name() {
        assert_eq!(emo().mint_display_name, "devvm-emo");
    }
    #[test]
    fn t10_emo_mint_policies() {
        assert_eq!(
            emo().mint_policies,
            ["default", "personal-emo", "projects-emo"]
        );
    }
    // 11.
    #[test]
    fn t11_unmapped_user_refused() {
        assert_eq!(resolve(&UserMap::builtin(), "nobody-xyz"), None);
    }
    // 12-20: wizard guard.
    #[test]
    fn t12_guard_ours_full() {
        assert!(is_ours(
            &wizard(),
            &tok(
                "token-devvm-wizard",
                &["default", "sops-admin", "vault-admin"]
            )
        ));
    }
    #[test]
    fn t13_guard_ours_minimal() {
        assert!(is_ours(
            &wizard(),
            &tok("token-devvm-wizard", &["default", "vault-admin"])
        ));
    }
    #[test]
    fn t14_guard_order_irrelevant() {
        assert!(is_ours(
            &wizard(),
            &tok("token-devvm-wizard", &["vault-admin", "default"])
        ));
    }
    #[test]
    fn t15_guard_woodpecker_foreign() {
        assert!(!is_ours(
            &wizard(),
            &tok(
                "kubernetes-woodpecker-default",
                &["ci", "default", "terraform-state"]
            )
        ));
    }
    #[test]
    fn t16_guard_admin_wrong_dn_foreign() {
        assert!(!is_ours(
            &wizard(),
            &tok("oidc-vbarzin", &["default", "sops-admin", "vault-admin"])
        ));
    }
    #[test]
    fn t17_guard_missing_required_policy() {
        assert!(!is_ours(
            &wizard(),
            &tok("token-devvm-wizard", &["default", "sops-admin"])
        ));
    }
    #[test]
    fn t18_guard_empty_dn() {
        assert!(!is_ours(&wizard(), &tok("", &["vault-admin"])));
    }
    #[test]
    fn t19_guard_no_policies() {
        assert!(!is_ours(&wizard(), &tok("token-devvm-wizard", &[])));
    }
    #[test]
    fn t20_guard_no_substring_match() {
        assert!(!is_ours(
            &wizard(),
            &tok("token-devvm-wizard", &["default", "vault-admin-ro"])
        ));
    }
    // 21-25: emo guard.
    #[test]
    fn t21_emo_ours() {
        assert!(is_ours(
            &emo(),
            &tok("token-devvm-emo", &["default", "personal-emo"])
        ));
    }
    #[test]
    fn t22_emo_right_policy_wrong_dn() {
        assert!(!is_ours(
            &emo(),
            &tok("oidc-emil.barzin@gmail.com", &["default", "personal-emo"])
        ));
    }
    #[test]
    fn t23_emo_missing_policy() {
        assert!(!is_ours(&emo(), &tok("token-devvm-emo", &["default"])));
    }
    #[test]
    fn t24_emo_no_substring_match() {
        assert!(!is_ours(
            &emo(),
            &tok("token-devvm-emo", &["default", "personal-emo-ro"])
        ));
    }
    #[test]
    fn t25_emo_never_another_users_token() {
        assert!(!is_ours(
            &emo(),
            &tok(
                "token-devvm-wizard",
                &["default", "sops-admin", "vault-admin"]
            )
        ));
    }
    // 26-30: parsing.
    #[test]
    fn t26_display_name_ours() {
        assert_eq!(parsed(&ours_fixture()).display_name, "token-devvm-wizard");
    }
    #[test]
    fn t27_display_name_oidc() {
        assert_eq!(parsed(&oidc_fixture()).display_name, "oidc-vbarzin");
    }
    #[test]
    fn t28_policy_csv_ours() {
        assert_eq!(
            policy_csv(&parsed(&ours_fixture())),
            "default,sops-admin,vault-admin"
        );
    }
    #[test]
    fn t29_policy_csv_oidc_token_then_identity() {
        assert_eq!(
            policy_csv(&parsed(&oidc_fixture())),
            "default,sops-admin,vault-admin"
        );
    }
    #[test]
    fn t30_policy_csv_woodpecker() {
        assert_eq!(
            policy_csv(&parsed(&wp_fixture())),
            "ci,default,terraform-state"
        );
    }
    // 31-33: parse + guard.
    #[test]
    fn t31_parse_guard_ours() {
        assert!(is_ours(&wizard(), &parsed(&ours_fixture())));
    }
    #[test]
    fn t32_parse_guard_woodpecker() {
        assert!(!is_ours(&wizard(), &parsed(&wp_fixture())));
    }
    #[test]
    fn t33_parse_guard_oidc() {
        assert!(!is_ours(&wizard(), &parsed(&oidc_fixture())));
    }
    // 34-35: accessor.
    #[test]
    fn t34_accessor_new() {
        assert_eq!(
            parsed(&with_accessor(ours_fixture(), "acc-new")).accessor,
            "acc-new"
        );
    }
    #[test]
    fn t35_accessor_absent() {
        assert_eq!(parsed(&json!({"data":{"display_name":"x"}})).accessor, "");
    }
    // 36-43: stale?
    fn stale_wizard(keep: &str, v: Value) -> bool {
        is_stale(&wizard().expected_display_name, keep, &parsed(&v))
    }
    #[test]
    fn t36_stale_old_periodic_revoked() {
        assert!(stale_wizard(
            "acc-new",
            with_accessor(ours_fixture(), "acc-old")
        ));
    }
    #[test]
    fn t37_just_minted_kept() {
        assert!(!stale_wizard(
            "acc-new",
            with_accessor(ours_fixture(), "acc-new")
        ));
    }
    #[test]
    fn t38_foreign_oidc_kept() {
        assert!(!stale_wizard(
            "acc-new",
            with_accessor(oidc_fixture(), "acc-old")
        ));
    }
    #[test]
    fn t39_woodpecker_kept() {
        assert!(!stale_wizard(
            "acc-new",
            with_accessor(wp_fixture(), "acc-old")
        ));
    }
    #[test]
    fn t40_no_accessor_kept() {
        assert!(!stale_wizard("acc-new", ours_fixture()));
    }
    #[test]
    fn t41_empty_keep_sweeps_nothing() {
        assert!(!stale_wizard("", with_accessor(ours_fixture(), "acc-old")));
    }
    #[test]
    fn t42_emo_stale() {
        let v = json!({"data":{"display_name":"token-devvm-emo","accessor":"acc-old","policies":["default","personal-emo"]}});
        assert!(is_stale(
            &emo().expected_display_name,
            "acc-new",
            &parsed(&v)
        ));
    }
    #[test]
    fn t43_emo_never_sweeps_wizard() {
        let v = with_accessor(ours_fixture(), "acc-old");
        assert!(!is_stale(
            &emo().expected_display_name,
            "acc-new",
            &parsed(&v)
        ));
    }

    // Beyond the table.
    #[test]
    fn missing_data_is_an_error_and_non_strings_are_ignored() {
        assert!(parse_lookup(&json!({"auth": null})).is_err());
        assert!(parse_lookup(&json!({"data": null})).is_err());
        let t = parsed(
            &json!({"data":{"display_name":"x","policies":["a",1,null,"b"],"identity_policies":{"x":1}}}),
        );
        assert_eq!(t.policies, ["a", "b"]);
    }

    #[test]
    fn display_name_sanitising() {
        assert_eq!(vault_display_name("devvm-a.b"), "token-devvm-a-b");
        assert_eq!(vault_display_name("devvm-x_"), "token-devvm-x");
        assert_eq!(vault_display_name("devvm-x__"), "token-devvm-x-");
    }

    #[test]
    fn hint_lists_policies_in_order() {
        assert_eq!(
            wizard().hint,
            "vault login -method=oidc && vault token create -orphan -period=768h -policy=vault-admin -policy=sops-admin -display-name=devvm-wizard -field=token > ~/.vault-token && chmod 600 ~/.vault-token"
        );
        let mut m = UserMap::builtin();
        m.users[1].1.remint_hint = Some("ask an admin".into());
        assert_eq!(resolve(&m, "emo").unwrap().hint, "ask an admin");
    }

    #[test]
    fn mint_failure_classes() {
        assert_eq!(classify_mint_failure(Some(400)), MintFailure::Denied);
        assert_eq!(classify_mint_failure(Some(403)), MintFailure::Denied);
        assert_eq!(classify_mint_failure(Some(503)), MintFailure::Failed);
        assert_eq!(classify_mint_failure(None), MintFailure::Failed);
    }

    #[test]
    fn capability_checks() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(create_permitted(&v(&["root"])));
        assert!(create_permitted(&v(&["create", "sudo"])));
        assert!(create_permitted(&v(&["update", "sudo"])));
        assert!(!create_permitted(&v(&["create", "update"])));
        assert!(!create_permitted(&v(&["sudo"])));
        assert!(
            !list_permitted(&v(&["list"])),
            "LIST on accessors needs sudo"
        );
        assert!(list_permitted(&v(&["list", "sudo"])));
        assert!(list_permitted(&v(&["root"])));
        assert!(!list_permitted(&v(&["deny"])));
        assert!(!list_permitted(&v(&["list", "sudo", "deny"])));
        let rules = policy_rules(
            r#"
            # admin
            path "*" { capabilities = ["read", "list"] }
            path "auth/token/accessors" {
              capabilities = ["list", "sudo"]
            }
            path "secret/+/x" { capabilities = ["deny"] }
        "#,
        );
        assert_eq!(rules.len(), 3);
        assert_eq!(
            list_caps(&rules, "auth/token/accessors/"),
            v(&["list", "sudo"])
        );
        assert_eq!(
            list_caps(&rules[..1], "auth/token/accessors/"),
            v(&["read", "list"])
        );
        assert_eq!(list_caps(&rules, "secret/a/x"), v(&["deny"]));
        assert!(list_caps(&rules[2..], "auth/token/accessors/").is_empty());
        let glob = policy_rules(
            r#"path "auth/token/*" { capabilities = ["sudo"] } path "auth/*" { capabilities = ["list"] }"#,
        );
        assert_eq!(
            list_caps(&glob, "auth/token/accessors/"),
            v(&["sudo"]),
            "longest prefix wins"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("768h"), Some(2_764_800));
        assert_eq!(parse_duration("32d"), Some(2_764_800));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("60"), Some(60));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("5h3"), None);
        assert_eq!(parse_duration(""), None);
    }

    fn healthy_info() -> TokenInfo {
        TokenInfo {
            ttl: Some(2_764_000),
            period: Some(2_764_800),
            explicit_max_ttl: Some(0),
            renewable: Some(true),
            orphan: Some(true),
            ..tok("token-devvm-wizard", &["default", "vault-admin"])
        }
    }

    #[test]
    fn health_verdicts() {
        let s = wizard();
        assert_eq!(health(&s, &healthy_info(), 7 * DAY).0, Health::Healthy);
        let stale = TokenInfo {
            ttl: Some(2_764_800 - 3 * DAY),
            ..healthy_info()
        };
        assert_eq!(health(&s, &stale, 7 * DAY).0, Health::Stale);
        for bad in [
            TokenInfo {
                period: Some(0),
                ..healthy_info()
            },
            TokenInfo {
                renewable: Some(false),
                ..healthy_info()
            },
            TokenInfo {
                orphan: Some(false),
                ..healthy_info()
            },
            TokenInfo {
                explicit_max_ttl: Some(10),
                ..healthy_info()
            },
            TokenInfo {
                ttl: Some(6 * DAY),
                ..healthy_info()
            },
            TokenInfo {
                period: Some(DAY),
                ttl: Some(DAY),
                ..healthy_info()
            },
        ] {
            assert_eq!(health(&s, &bad, 7 * DAY).0, Health::Warning, "{bad:?}");
        }
        assert_eq!(
            health(&s, &tok("token", &["root"]), 7 * DAY).0,
            Health::Drift
        );
        // VTR_MIN_TTL moves the WARNING threshold with the run's "not extended" rule.
        let mut short = healthy_info();
        short.ttl = Some(10 * DAY);
        short.period = Some(10 * DAY);
        assert_eq!(health(&s, &short, 7 * DAY).0, Health::Healthy);
        let (h, why) = health(&s, &short, 14 * DAY);
        assert_eq!(h, Health::Warning);
        assert_eq!(
            why,
            vec![format!(
                "ttl {}s is under VTR_MIN_TTL ({}s)",
                10 * DAY,
                14 * DAY
            )]
        );
        assert_eq!(Health::Error.exit_code(), 2);
        assert_eq!(Health::Drift.exit_code(), 1);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(2_764_800), "32d");
        assert_eq!(human_secs(90_061), "1d 1h 1m 1s");
        assert_eq!(human_secs(0), "0s");
    }
}

#[cfg(test)]
pub(crate) mod props {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Arbitrary JSON, a few levels deep, with the keys of a lookup answer over-represented.
    pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("data".to_string()),
            Just("auth".to_string()),
            Just("ttl".to_string()),
            Just("policies".to_string()),
            Just("display_name".to_string()),
            Just("lease_duration".to_string()),
            "\\PC{0,8}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e300f64..1e300).prop_map(Value::from),
            "\\PC{0,16}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any string: no panic, never a negative count, and only digits/whitespace/`smhd` pass.
        #[test]
        fn duration_never_panics_nor_goes_negative(s in "\\PC{0,24}|[0-9smhdx +-]{0,24}") {
            if let Some(n) = parse_duration(&s) {
                prop_assert!(n >= 0);
                prop_assert!(s.trim().chars().all(|c| c.is_ascii_digit() || "smhd".contains(c)), "{:?}", s);
                prop_assert!(s.trim().chars().next().is_some_and(|c| c.is_ascii_digit()));
            }
        }

        /// Rendering components as `<d>d<h>h<m>m<s>s` (any subset, any order) and bare seconds
        /// parses back to the total; a unit without a number or a trailing number is refused.
        #[test]
        fn duration_round_trips(
            parts in proptest::collection::vec((0i64..100_000, prop_oneof![Just('s'), Just('m'), Just('h'), Just('d')]), 1..5),
            secs in 0i64..i64::MAX,
            pad in "[ \t]{0,2}",
        ) {
            let text: String = parts.iter().map(|(n, u)| format!("{n}{u}")).collect();
            let want: i64 = parts.iter().map(|(n, u)| n * match u { 's' => 1, 'm' => 60, 'h' => 3600, _ => 86_400 }).sum();
            prop_assert_eq!(parse_duration(&format!("{pad}{text}{pad}")), Some(want));
            prop_assert_eq!(parse_duration(&secs.to_string()), Some(secs));
            prop_assert_eq!(parse_duration(&format!("{text}7")), None);
            prop_assert_eq!(parse_duration(&format!("h{text}")), None);
        }

        /// Overflow is refused, not wrapped or panicked on.
        #[test]
        fn duration_overflow_is_none(n in (i64::MAX / 86_400 + 1)..i64::MAX, u in "[smhd]") {
            let text = format!("{n}{u}");
            let want = n.checked_mul(match u.as_str() { "s" => 1, "m" => 60, "h" => 3600, _ => 86_400 });
            prop_assert_eq!(parse_duration(&text), want);
            prop_assert_eq!(parse_duration(&format!("{}", u128::from(u64::MAX) * 4)), None);
        }

        /// Any JSON answer: no panic; Err exactly when there is no `data` object; every typed
        /// field is taken only when it has the right JSON type.
        #[test]
        fn lookup_any_json(doc in arb_json(), data in arb_json()) {
            for d in [doc.clone(), json!({"data": data}), json!({"data": doc})] {
                let has_data = d.get("data").is_some_and(Value::is_object);
                match parse_lookup(&d) {
                    Err(e) => {
                        prop_assert!(!has_data);
                        prop_assert_eq!(e, "answer has no data object");
                    }
                    Ok(i) => {
                        prop_assert!(has_data);
                        let x = &d["data"];
                        prop_assert_eq!(i.ttl, x["ttl"].as_i64());
                        prop_assert_eq!(i.renewable, x["renewable"].as_bool());
                        prop_assert_eq!(&i.display_name, x["display_name"].as_str().unwrap_or(""));
                        let n = |k: &str| x[k].as_array().map_or(0, |a| a.iter().filter(|v| v.is_string()).count());
                        prop_assert_eq!(i.policies.len(), n("policies") + n("identity_policies"));
                    }
                }
            }
        }

        /// A well-formed answer round-trips field by field.
        #[test]
        fn lookup_round_trips(
            dn in "\\PC{0,20}", acc in "[A-Za-z0-9]{0,24}", pol in proptest::collection::vec("[a-z-]{1,10}", 0..5),
            ipol in proptest::collection::vec("[a-z-]{1,10}", 0..3), ttl in any::<i64>(), period in any::<i64>(),
            renewable in any::<bool>(), orphan in any::<bool>(),
        ) {
            let d = json!({"data": {"display_name": dn, "accessor": acc, "policies": pol, "identity_policies": ipol,
                "ttl": ttl, "period": period, "renewable": renewable, "orphan": orphan, "type": "service"}});
            let i = parse_lookup(&d).unwrap();
            prop_assert_eq!(i.display_name, dn);
            prop_assert_eq!(i.accessor, acc);
            prop_assert_eq!(i.policies, [pol, ipol].concat());
            prop_assert_eq!((i.ttl, i.period, i.renewable, i.orphan), (Some(ttl), Some(period), Some(renewable), Some(orphan)));
            prop_assert_eq!(i.token_type.as_deref(), Some("service"));
            prop_assert_eq!(i.explicit_max_ttl, None);
        }
    }
}
