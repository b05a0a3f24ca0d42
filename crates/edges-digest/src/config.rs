//! Validated configuration (spec §2): flag beats env, empty = unset, each error names its
//! variable and never shows a secret.

use crate::cli::{Cli, Command};
use clap::Parser;
use homelab_core::Secret;
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateMode {
    Table,
    None,
}

impl StateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StateMode::Table => "table",
            StateMode::None => "none",
        }
    }
}

/// A duration with the spelling the operator gave (`24h`), used in the message label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dur {
    pub text: String,
    pub value: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub command: Command,
    pub database_url: Secret,
    pub webhook: Option<Secret>,
    pub channel: Option<String>,
    pub dry_run: bool,
    pub window: Dur,
    pub grace: Dur,
    pub max_catchup: Dur,
    pub since: Option<OffsetDateTime>,
    pub max_edges: u32,
    pub post_empty: bool,
    pub state: StateMode,
    pub failure_notice: bool,
    pub json: bool,
    pub slack_timeout: std::time::Duration,
    pub pushgateway_url: Option<Secret>,
    /// Settings of `policy` and `graph` (defaults for the other commands).
    pub tool: ToolConfig,
}

/// Window start of `policy`/`graph`: a look-back from the DB's now, or a fixed time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinceSpec {
    Ago(Dur),
    At(OffsetDateTime),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyFormat {
    K8s,
    CalicoStaged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    Svg,
}

/// Where DNS goes: kube-dns by default, `--dns-peer` a CIDR or `NAMESPACE/KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsPeer {
    KubeDns,
    Cidr(String),
    Pods {
        namespace: String,
        key: String,
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolConfig {
    pub since: SinceSpec,
    pub namespace: Option<String>,
    pub policy_format: PolicyFormat,
    pub graph_format: GraphFormat,
    pub ingress: bool,
    pub exclude_cidrs: Vec<String>,
    pub dns_peer: DnsPeer,
    pub no_self: bool,
    pub check: bool,
}

impl Default for ToolConfig {
    fn default() -> Self {
        ToolConfig {
            since: SinceSpec::Ago(Dur {
                text: "7d".into(),
                value: Duration::days(7),
            }),
            namespace: None,
            policy_format: PolicyFormat::K8s,
            graph_format: GraphFormat::Mermaid,
            ingress: false,
            exclude_cidrs: Vec::new(),
            dns_peer: DnsPeer::KubeDns,
            no_self: false,
            check: false,
        }
    }
}

/// RFC 1123 label, as Kubernetes requires of namespace names
/// (kubernetes/kubernetes `staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go`
/// `IsDNS1123Label`: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters).
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A label key or value as `metav1` allows it (qualified name: optional DNS-subdomain prefix
/// `/`, name `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?` ≤ 63), kept simple and strict.
fn is_label_part(s: &str, allow_prefix: bool) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) if allow_prefix => (Some(p), n),
        Some(_) => return false,
        None => (None, s),
    };
    let ok_name = |n: &str| {
        let b = n.as_bytes();
        (1..=63).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    };
    ok_name(name)
        && prefix.is_none_or(|p| (1..=253).contains(&p.len()) && p.split('.').all(is_dns_label))
}

/// `a.b.c.d/n` or an IPv6 CIDR; returns the canonical text (as given when valid).
pub fn parse_cidr(s: &str) -> Result<String, String> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a CIDR like 10.42.0.0/16"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("{s:?} has a bad prefix length"))?;
    let ip: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} has a bad address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max || len.to_string() != s.split_once('/').map_or("", |x| x.1) {
        return Err(format!("{s:?} has a bad prefix length"));
    }
    Ok(format!("{ip}/{len}"))
}

fn parse_dns_peer(s: &str) -> Result<DnsPeer, String> {
    if s.contains('=') {
        let (ns, kv) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR or NAMESPACE/KEY=VALUE"))?;
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if !is_dns_label(ns) || !is_label_part(k, true) || !is_label_part(v, false) {
            return Err(format!(
                "{s:?} is not NAMESPACE/KEY=VALUE with a DNS-label namespace and a label key=value"
            ));
        }
        return Ok(DnsPeer::Pods {
            namespace: ns.into(),
            key: k.into(),
            value: v.into(),
        });
    }
    parse_cidr(s).map(DnsPeer::Cidr)
}

/// `--since` of policy/graph: a duration (7d) or a time.
pub fn parse_tool_since(s: &str) -> Result<SinceSpec, String> {
    if let Ok(d) = parse_duration(s) {
        if d <= Duration::ZERO || d > Duration::days(3650) {
            return Err(format!("{s} is outside 1s..=3650d"));
        }
        return Ok(SinceSpec::Ago(Dur {
            text: s.to_string(),
            value: d,
        }));
    }
    parse_since(s)
        .map(SinceSpec::At)
        .map_err(|_| format!("{s:?} is not a duration like 7d or a time (YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\", RFC 3339)"))
}

impl Config {
    /// The channel as operators read it (`#alerts` or `webhook-default`).
    pub fn channel_shown(&self) -> &str {
        self.channel.as_deref().unwrap_or("webhook-default")
    }
}

#[derive(Debug)]
pub enum ConfigError {
    /// clap: usage error, or `--help`/`--version` (exit 0).
    Cli(clap::Error),
    /// `ERROR config <VAR>: <reason>`.
    Var { var: &'static str, reason: String },
    /// L-NOWEBHOOK.
    NoWebhook,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Cli(e) => write!(f, "{}", e.to_string().trim_end()),
            ConfigError::Var { var, reason } => write!(f, "config {var}: {reason}"),
            ConfigError::NoWebhook => f.write_str(
                "config SLACK_WEBHOOK_URL: empty — refusing to run (the original silently dry-ran)",
            ),
        }
    }
}

fn bad(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Var {
        var,
        reason: reason.into(),
    }
}

/// `^(\d+)([smhd])$` (as `homelab edges --new-since`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let unit = s.chars().last().ok_or("empty duration")?;
    let digits = &s[..s.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a duration like 30m, 24h or 7d"));
    }
    let n: i64 = digits.parse().map_err(|_| format!("{s:?} is too large"))?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("{s:?} has unit {unit:?}; use s, m, h or d")),
    };
    n.checked_mul(mult)
        .map(Duration::seconds)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// `YYYY-MM-DD` (00:00 UTC), `YYYY-MM-DD HH:MM[:SS]` (UTC) or RFC 3339.
pub fn parse_since(s: &str) -> Result<OffsetDateTime, String> {
    let err = || format!("{s:?} is not YYYY-MM-DD, \"YYYY-MM-DD HH:MM[:SS]\" or RFC 3339");
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(d) = time::Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc());
    }
    for f in [
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ] {
        if let Ok(t) = PrimitiveDateTime::parse(s, f) {
            return Ok(t.assume_utc());
        }
    }
    Err(err())
}

/// `1/true/yes` or `0/false/no`, case-insensitive.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean (1/true/yes or 0/false/no)")),
    }
}

/// The webhook rules of §2.1; the reason never repeats the URL.
pub fn check_webhook(url: &str) -> Result<(), String> {
    let parts = homelab_core::http::UrlParts::parse(url).ok_or("not an absolute http(s) URL")?;
    if parts.userinfo.is_some() {
        return Err("must not carry user:password@".into());
    }
    let host = parts
        .host_port
        .rsplit_once(':')
        .map_or(parts.host_port.as_str(), |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                parts.host_port.as_str()
            }
        });
    match parts.scheme.as_str() {
        "https" => {}
        "http" if matches!(host, "127.0.0.1" | "[::1]" | "localhost") => {}
        "http" => return Err("must be https (http only to 127.0.0.1, ::1 or localhost)".into()),
        _ => return Err("scheme must be https".into()),
    }
    if host.is_empty() {
        return Err("has no host".into());
    }
    if parts.path.trim_start_matches('/').is_empty() {
        return Err("has an empty path".into());
    }
    Ok(())
}

fn check_channel(c: &str) -> bool {
    let body = c.strip_prefix(['#', '@']).unwrap_or(c);
    (1..=80).contains(&body.len())
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn dur_in(
    var: &'static str,
    s: &str,
    min: Duration,
    max: Duration,
    range: &str,
) -> Result<Dur, ConfigError> {
    let value = parse_duration(s).map_err(|e| bad(var, e))?;
    if value < min || value > max {
        return Err(bad(var, format!("{s} is outside {range}")));
    }
    Ok(Dur {
        text: s.to_string(),
        value,
    })
}

/// Flag, else env, else `None`; empty counts as unset.
fn pick(flag: Option<String>, env: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    flag.or_else(|| env(var)).filter(|v| !v.is_empty())
}

/// Parse `args` (argv incl. program name) and the environment (`env(VAR)`).
pub fn parse_config(
    env: &dyn Fn(&str) -> Option<String>,
    args: &[String],
) -> Result<Config, ConfigError> {
    let cli = Cli::try_parse_from(args).map_err(ConfigError::Cli)?;
    let get = |flag: Option<String>, var: &str| pick(flag, env, var);
    let boolean =
        |flag: Option<String>, var: &'static str, default: bool| -> Result<bool, ConfigError> {
            match pick(flag, env, var) {
                None => Ok(default),
                Some(v) => parse_bool(&v).map_err(|e| bad(var, e)),
            }
        };
    let command = cli.command.unwrap_or(Command::Run);
    let dry_run = boolean(cli.dry_run, "DRY_RUN", false)?;
    let database_url = get(cli.database_url, "DATABASE_URL")
        .ok_or_else(|| bad("DATABASE_URL", "required (postgres URL or key=value DSN)"))?;
    crate::tls::parse_dsn(&database_url).map_err(|e| {
        bad(
            "DATABASE_URL",
            format!(
                "invalid: {}",
                homelab_core::http::scrub(&e, std::slice::from_ref(&database_url))
            ),
        )
    })?;
    let webhook = get(cli.slack_webhook_url, "SLACK_WEBHOOK_URL");
    if let Some(w) = &webhook {
        check_webhook(w).map_err(|e| bad("SLACK_WEBHOOK_URL", e))?;
    }
    let channel = get(cli.slack_channel, "SLACK_CHANNEL");
    if let Some(c) = &channel {
        if !check_channel(c) {
            return Err(bad(
                "SLACK_CHANNEL",
                format!("{c:?} does not match ^[#@]?[A-Za-z0-9._-]{{1,80}}$"),
            ));
        }
    }
    let window = dur_in(
        "DIGEST_WINDOW",
        &get(cli.window, "DIGEST_WINDOW").unwrap_or("24h".into()),
        Duration::hours(1),
        Duration::days(7),
        "1h..=7d",
    )?;
    let grace = dur_in(
        "DIGEST_GRACE",
        &get(cli.grace, "DIGEST_GRACE").unwrap_or("2h".into()),
        Duration::ZERO,
        Duration::hours(24),
        "0..=24h",
    )?;
    let max_catchup = dur_in(
        "DIGEST_MAX_CATCHUP",
        &get(cli.max_catchup, "DIGEST_MAX_CATCHUP").unwrap_or("7d".into()),
        Duration::ZERO,
        Duration::days(90),
        "window+grace..=90d",
    )?;
    if max_catchup.value < window.value + grace.value {
        return Err(bad(
            "DIGEST_MAX_CATCHUP",
            format!(
                "{} is shorter than DIGEST_WINDOW + DIGEST_GRACE ({} + {})",
                max_catchup.text, window.text, grace.text
            ),
        ));
    }
    let is_tool = matches!(command, Command::Policy | Command::Graph);
    let since_raw = get(cli.since, "DIGEST_SINCE");
    let since = match &since_raw {
        Some(s) if !is_tool => Some(parse_since(s).map_err(|e| bad("DIGEST_SINCE", e))?),
        _ => None,
    };
    let mut tool = ToolConfig::default();
    if is_tool {
        if let Some(s) = &since_raw {
            tool.since = parse_tool_since(s).map_err(|e| bad("DIGEST_SINCE", e))?;
        }
        tool.namespace = get(cli.namespace, "DIGEST_NAMESPACE");
        if let Some(ns) = &tool.namespace {
            if !is_dns_label(ns) {
                return Err(bad(
                    "DIGEST_NAMESPACE",
                    format!(
                        "{:?} is not a DNS label (lowercase a-z, 0-9, '-', at most 63)",
                        crate::render::clean(ns, 80)
                    ),
                ));
            }
        } else if command == Command::Policy {
            return Err(bad(
                "DIGEST_NAMESPACE",
                "required for policy (--namespace NS)",
            ));
        }
        let format = get(cli.format, "DIGEST_FORMAT");
        match (command, format.as_deref()) {
            (Command::Policy, None | Some("k8s")) => {}
            (Command::Policy, Some("calico-staged")) => {
                tool.policy_format = PolicyFormat::CalicoStaged;
            }
            (Command::Graph, None | Some("mermaid")) => {}
            (Command::Graph, Some("dot")) => tool.graph_format = GraphFormat::Dot,
            (Command::Graph, Some("svg")) => tool.graph_format = GraphFormat::Svg,
            (c, Some(o)) => {
                let allowed = if c == Command::Policy {
                    "k8s or calico-staged"
                } else {
                    "mermaid, dot or svg"
                };
                return Err(bad(
                    "DIGEST_FORMAT",
                    format!("{:?} is not {allowed}", crate::render::clean(o, 40)),
                ));
            }
            _ => {}
        }
        tool.ingress = boolean(cli.ingress, "DIGEST_INGRESS", false)?;
        tool.no_self = boolean(cli.no_self, "DIGEST_NO_SELF", false)?;
        tool.check = boolean(cli.check, "DIGEST_CHECK", false)?;
        let cidrs: Vec<String> = if cli.exclude_cidr.is_empty() {
            get(None, "DIGEST_EXCLUDE_CIDR")
                .map(|v| {
                    v.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            cli.exclude_cidr.clone()
        };
        for c in cidrs {
            let c = parse_cidr(&c)
                .map_err(|e| bad("DIGEST_EXCLUDE_CIDR", crate::render::clean(&e, 120)))?;
            if !tool.exclude_cidrs.contains(&c) {
                tool.exclude_cidrs.push(c);
            }
        }
        tool.exclude_cidrs.sort();
        if let Some(p) = get(cli.dns_peer, "DIGEST_DNS_PEER") {
            tool.dns_peer = parse_dns_peer(&p)
                .map_err(|e| bad("DIGEST_DNS_PEER", crate::render::clean(&e, 160)))?;
        }
    }
    let max_edges = match get(cli.max_edges, "DIGEST_MAX_EDGES") {
        None => 40,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => {
                return Err(bad(
                    "DIGEST_MAX_EDGES",
                    format!("{s:?} is not a number in 1..=200"),
                ))
            }
        },
    };
    let post_empty = boolean(cli.post_empty, "DIGEST_POST_EMPTY", false)?;
    let state = match get(cli.state, "DIGEST_STATE").as_deref() {
        None | Some("table") => StateMode::Table,
        Some("none") => StateMode::None,
        Some(o) => {
            return Err(bad(
                "DIGEST_STATE",
                format!("{o:?} is not `table` or `none`"),
            ))
        }
    };
    let failure_notice = boolean(cli.failure_notice, "DIGEST_FAILURE_NOTICE", true)?;
    let json = boolean(cli.json, "DIGEST_JSON", false)?;
    let slack_timeout = match get(cli.slack_timeout_secs, "SLACK_TIMEOUT_SECS") {
        None => 15,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=60).contains(&n) => n,
            _ => {
                return Err(bad(
                    "SLACK_TIMEOUT_SECS",
                    format!("{s:?} is not a number of seconds in 1..=60"),
                ))
            }
        },
    };
    let pushgateway_url = get(cli.pushgateway_url, "PUSHGATEWAY_URL");
    if let Some(p) = &pushgateway_url {
        if homelab_core::http::UrlParts::parse(p).is_none() {
            return Err(bad("PUSHGATEWAY_URL", "not an absolute http(s) URL"));
        }
    }
    if webhook.is_none() && !dry_run && command == Command::Run {
        return Err(ConfigError::NoWebhook);
    }
    Ok(Config {
        command,
        database_url: Secret::new(database_url),
        webhook: webhook.map(Secret::new),
        channel,
        dry_run,
        window,
        grace,
        max_catchup,
        since,
        max_edges,
        post_empty,
        state,
        failure_notice,
        json,
        slack_timeout: std::time::Duration::from_secs(slack_timeout),
        pushgateway_url: pushgateway_url.map(Secret::new),
        tool,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use time::macros::datetime;

    const HOOK: &str = "https://hooks.slack.com/services/T1/B1/s3cr3t";

    fn parse(env: &[(&str, &str)], args: &[&str]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut argv = vec!["edges-digest".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        parse_config(&|k| m.get(k).cloned(), &argv)
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DATABASE_URL", "postgres://u:pw@db/goldmane_edges"),
            ("SLACK_WEBHOOK_URL", HOOK),
        ]
    }

    #[test]
    fn durations() {
        for (s, secs) in [
            ("24h", 86_400),
            ("7d", 604_800),
            ("30m", 1800),
            ("90s", 90),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration(s), Ok(Duration::seconds(secs)), "{s}");
        }
        for s in [
            "24",
            "1w",
            "-1h",
            "",
            "h",
            "1.5h",
            "+1h",
            " 1h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn since_forms() {
        assert_eq!(
            parse_since("2026-06-28"),
            Ok(datetime!(2026-06-28 00:00 UTC))
        );
        assert_eq!(
            parse_since("2026-06-28 07:42"),
            Ok(datetime!(2026-06-28 07:42 UTC))
        );
        assert_eq!(
            parse_since("2026-06-28 07:42:05"),
            Ok(datetime!(2026-06-28 07:42:05 UTC))
        );
        assert_eq!(
            parse_since("2026-06-28T07:42:05+01:00"),
            Ok(datetime!(2026-06-28 06:42:05 UTC))
        );
        for s in [
            "2026-13-01",
            "2026-06-32",
            "yesterday",
            "24h",
            "2026-06-28T07",
        ] {
            assert!(parse_since(s).is_err(), "{s}");
        }
    }

    #[test]
    fn defaults() {
        let c = parse(&base(), &[]).unwrap();
        assert_eq!(c.command, Command::Run);
        assert_eq!(c.window.text, "24h");
        assert_eq!(c.grace.value, Duration::hours(2));
        assert_eq!(c.max_catchup.value, Duration::days(7));
        assert_eq!(
            (
                c.max_edges,
                c.post_empty,
                c.dry_run,
                c.failure_notice,
                c.json
            ),
            (40, false, false, true, false)
        );
        assert_eq!(c.state, StateMode::Table);
        assert_eq!(c.slack_timeout.as_secs(), 15);
        assert_eq!(c.channel_shown(), "webhook-default");
        assert!(c.since.is_none() && c.pushgateway_url.is_none());
        assert_eq!(parse(&base(), &["digest"]).unwrap().command, Command::Run);
        assert_eq!(
            parse(&base(), &["migrate"]).unwrap().command,
            Command::Migrate
        );
    }

    #[test]
    fn flag_beats_env_and_empty_is_unset() {
        let mut env = base();
        env.extend([
            ("DIGEST_MAX_EDGES", "10"),
            ("SLACK_CHANNEL", "#security"),
            ("DRY_RUN", "yes"),
            ("DIGEST_WINDOW", ""),
        ]);
        let c = parse(
            &env,
            &[
                "--max-edges",
                "12",
                "--slack-channel",
                "#alerts",
                "--dry-run=no",
            ],
        )
        .unwrap();
        assert_eq!(
            (c.max_edges, c.channel.as_deref(), c.dry_run),
            (12, Some("#alerts"), false)
        );
        assert_eq!(c.window.text, "24h");
        let c = parse(&env, &["run", "--json"]).unwrap();
        assert!(c.json && c.dry_run);
        assert_eq!(c.max_edges, 10);
        let c = parse(&env, &["--dry-run", "--window=36h", "--grace", "0s"]).unwrap();
        assert!(c.dry_run);
        assert_eq!(c.window.value, Duration::hours(36));
        assert_eq!(c.grace.value, Duration::ZERO);
        assert!(
            parse(&[("DATABASE_URL", "host=x"), ("DRY_RUN", "TRUE")], &[])
                .unwrap()
                .dry_run
        );
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("SLACK_WEBHOOK_URL", "http://hooks.slack.com/services/x"),
            (
                "SLACK_WEBHOOK_URL",
                "https://user:pw@hooks.slack.com/services/x",
            ),
            ("SLACK_WEBHOOK_URL", "https://hooks.slack.com/"),
            ("SLACK_WEBHOOK_URL", "hooks.slack.com/services/x"),
            ("SLACK_WEBHOOK_URL", "ftp://hooks.slack.com/x"),
            ("SLACK_CHANNEL", "#has space"),
            ("SLACK_CHANNEL", &"x".repeat(81)),
            ("DRY_RUN", "maybe"),
            ("DIGEST_WINDOW", "24"),
            ("DIGEST_WINDOW", "30m"),
            ("DIGEST_WINDOW", "8d"),
            ("DIGEST_GRACE", "25h"),
            ("DIGEST_GRACE", "-1h"),
            ("DIGEST_MAX_CATCHUP", "1d"),
            ("DIGEST_MAX_CATCHUP", "91d"),
            ("DIGEST_MAX_CATCHUP", "1w"),
            ("DIGEST_SINCE", "2026-13-01"),
            ("DIGEST_MAX_EDGES", "0"),
            ("DIGEST_MAX_EDGES", "201"),
            ("DIGEST_MAX_EDGES", "ten"),
            ("DIGEST_POST_EMPTY", "2"),
            ("DIGEST_STATE", "file"),
            ("DIGEST_FAILURE_NOTICE", "on"),
            ("DIGEST_JSON", "y"),
            ("SLACK_TIMEOUT_SECS", "0"),
            ("SLACK_TIMEOUT_SECS", "61"),
            ("PUSHGATEWAY_URL", "pushgateway:9091"),
            ("DATABASE_URL", "host=x port=notaport password=hunter2"),
        ];
        for (var, val) in cases {
            let mut env = base();
            env.retain(|(k, _)| k != var);
            env.push((var, val));
            let e = parse(&env, &[]).expect_err(&format!("{var}={val}"));
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("config {var}: ")),
                "{var}={val}: {msg}"
            );
            assert!(
                !msg.contains("s3cr3t") && !msg.contains("hunter2") && !msg.contains(":pw@"),
                "{msg}"
            );
            if *var == "SLACK_WEBHOOK_URL" {
                assert!(!msg.contains("services"), "{msg}");
            }
        }
    }

    #[test]
    fn malformed_dsns_never_echo_the_password() {
        for dsn in [
            "postgres://u:hunter2pw@h:xx/db",
            "postgres://u:hunter2pw@[::1/db",
            "postgres://u:hunter2pw@h/db?sslmode=maybe",
            "postgres://u:hunter2pw@h/db?nosuchoption=1",
            "postgresql://u:hunter2pw@h/db?password=hunter2pw&port=x",
            "host='unterminated password=hunter2pw",
            "host=h password=hunter2pw port=",
            "host=h password=hunter2pw nosuch=1",
            "host=h password=hunter2pw connect_timeout=abc",
            "password=hunter2pw sslmode=verify-full sslrootcert",
        ] {
            let mut env = base();
            env.retain(|(k, _)| *k != "DATABASE_URL");
            env.push(("DATABASE_URL", dsn));
            match parse(&env, &[]) {
                Err(e) => {
                    let m = e.to_string();
                    assert!(m.starts_with("config DATABASE_URL: "), "{dsn}: {m}");
                    assert!(!m.contains("hunter2pw"), "{dsn}: {m}");
                }
                Ok(c) => assert_eq!(c.database_url.expose(), dsn),
            }
        }
    }

    #[test]
    fn missing_or_empty_webhook() {
        let db = ("DATABASE_URL", "host=127.0.0.1 dbname=x");
        for env in [vec![db], vec![db, ("SLACK_WEBHOOK_URL", "")]] {
            let e = parse(&env, &[]).unwrap_err();
            assert!(matches!(e, ConfigError::NoWebhook));
            assert_eq!(
                e.to_string(),
                "config SLACK_WEBHOOK_URL: empty — refusing to run (the original silently dry-ran)"
            );
            assert!(parse(&env, &["--dry-run"]).is_ok());
            assert!(parse(&env, &["migrate"]).is_ok());
        }
        assert!(matches!(
            parse(&[], &[]).unwrap_err(),
            ConfigError::Var {
                var: "DATABASE_URL",
                ..
            }
        ));
    }

    #[test]
    fn webhook_rules() {
        assert!(check_webhook(HOOK).is_ok());
        assert!(check_webhook("http://127.0.0.1:8080/services/x").is_ok());
        assert!(check_webhook("http://localhost/x").is_ok());
        assert!(check_webhook("http://[::1]:9/x").is_ok());
        assert!(check_webhook("http://10.0.0.1/x").is_err());
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let e = parse(&base(), &["--nope"]).unwrap_err();
        assert!(matches!(e, ConfigError::Cli(ref c) if c.exit_code() == 2));
        let e = parse(&base(), &["--help"]).unwrap_err();
        let ConfigError::Cli(c) = e else { panic!() };
        let help = c.to_string();
        for needle in [
            "DATABASE_URL",
            "SLACK_WEBHOOK_URL",
            "SLACK_CHANNEL",
            "DRY_RUN",
            "DIGEST_WINDOW",
            "DIGEST_GRACE",
            "DIGEST_MAX_CATCHUP",
            "DIGEST_SINCE",
            "DIGEST_MAX_EDGES",
            "DIGEST_POST_EMPTY",
            "DIGEST_STATE",
            "DIGEST_FAILURE_NOTICE",
            "DIGEST_JSON",
            "SLACK_TIMEOUT_SECS",
            "PUSHGATEWAY_URL",
            "Exit codes",
            "[default: 40]",
            "migrate",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}");
        }
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const UNITS: [(char, i64); 4] = [('s', 1), ('m', 60), ('h', 3600), ('d', 86_400)];

        fn duration_text() -> impl Strategy<Value = String> {
            prop_oneof![
                ("[0-9]{1,6}", "[smhd]").prop_map(|(n, u)| format!("{n}{u}")),
                ("[0-9]{15,22}", "[smhd]").prop_map(|(n, u)| format!("{n}{u}")),
                "[+-]?[0-9]{0,4}[.,]?[0-9]{0,2}[smhdwSMHDµ ]?",
                "[0-9]{1,5}[a-zA-Zµ ]",
                "[ \\t]?[0-9]{1,3}[smhd][ \\t]?",
                ".{0,12}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// WINDOW/GRACE/MAX_CATCHUP: never panics; accepted iff `^[0-9]+[smhd]$` and the
            /// seconds fit an i64, and then the value is digits × unit.
            #[test]
            fn parse_duration_accepts_exactly_the_grammar(s in duration_text()) {
                let want = s
                    .char_indices()
                    .last()
                    .and_then(|(i, u)| {
                        let digits = &s[..i];
                        let mult = UNITS.iter().find(|(c, _)| *c == u)?.1;
                        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                            return None;
                        }
                        digits.parse::<i64>().ok()?.checked_mul(mult)
                    });
                match parse_duration(&s) {
                    Ok(d) => prop_assert_eq!(Some(d.whole_seconds()), want, "{:?}", s),
                    Err(e) => {
                        prop_assert_eq!(want, None, "{:?}", s);
                        prop_assert!(!e.is_empty());
                    }
                }
            }

            /// render → parse round-trip in every unit (leading zeros too), and the parse is
            /// monotonic: more units never give a shorter duration; unit steps agree
            /// (60s = 1m, 60m = 1h, 24h = 1d).
            #[test]
            fn parse_duration_round_trips_and_is_monotonic(
                a in 0i64..=106_751_991_167_300, b in 0i64..=106_751_991_167_300,
                unit in 0usize..4, zeros in 0usize..3,
            ) {
                let (u, mult) = UNITS[unit];
                let render = |n: i64| format!("{}{n}{u}", "0".repeat(zeros));
                let (pa, pb) = (parse_duration(&render(a)), parse_duration(&render(b)));
                match a.checked_mul(mult) {
                    Some(secs) => prop_assert_eq!(pa.clone(), Ok(Duration::seconds(secs))),
                    None => prop_assert!(pa.clone().unwrap_err().contains("too large")),
                }
                if let (Ok(x), Ok(y)) = (pa, pb) {
                    prop_assert_eq!(a.cmp(&b), x.cmp(&y));
                }
                let n = a % 1_000_000;
                prop_assert_eq!(parse_duration(&format!("{}s", n * 60)), parse_duration(&format!("{n}m")));
                prop_assert_eq!(parse_duration(&format!("{}m", n * 60)), parse_duration(&format!("{n}h")));
                prop_assert_eq!(parse_duration(&format!("{}h", n * 24)), parse_duration(&format!("{n}d")));
            }

            /// --since: RFC 3339 render → parse gives the same instant (any offset, with or
            /// without fractional seconds); the date and "date time" forms are UTC.
            #[test]
            fn parse_since_round_trips(
                secs in -62_135_596_800i64..253_402_214_400,
                nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
                off_min in -1439i32..=1439,
            ) {
                let off = time::UtcOffset::from_whole_seconds(off_min * 60).unwrap();
                let t = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                    .replace_nanosecond(nanos).unwrap()
                    .to_offset(off);
                // The local year must stay within RFC 3339's 0000–9999.
                prop_assume!((0..=9999).contains(&t.year()));
                let text = t.format(&Rfc3339).unwrap();
                prop_assert_eq!(parse_since(&text), Ok(t), "{}", text);
                let u = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap();
                prop_assume!((0..=9999).contains(&u.year()));
                let (d, hms) = (u.date(), u.time());
                let day = format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day());
                prop_assert_eq!(parse_since(&day), Ok(d.midnight().assume_utc()));
                let full = format!("{day} {:02}:{:02}:{:02}", hms.hour(), hms.minute(), hms.second());
                prop_assert_eq!(parse_since(&full), Ok(u));
                let hm = format!("{day} {:02}:{:02}", hms.hour(), hms.minute());
                prop_assert_eq!(parse_since(&hm), Ok(u.replace_second(0).unwrap()));
            }

            /// --since on junk: never panics; an error names the accepted forms.
            #[test]
            fn parse_since_never_panics(s in prop_oneof![
                ".{0,30}",
                "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([T ][0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2})?(\\.[0-9]{0,10})?(Z|[+-][0-9]{2}:[0-9]{2})?)?",
            ]) {
                if let Err(e) = parse_since(&s) {
                    prop_assert!(e.contains("RFC 3339"));
                }
            }

            /// Booleans: exactly 1/true/yes and 0/false/no in any letter case.
            #[test]
            fn parse_bool_accepts_exactly_the_six_words(v in prop_oneof![
                "(1|0|[tT][rR][uU][eE]|[fF][aA][lL][sS][eE]|[yY][eE][sS]|[nN][oO])",
                "[ ]?(1|0|true|no)[ ]?",
                "[a-zA-Z0-9]{0,6}",
                ".{0,8}",
            ]) {
                let want = match v.to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" => Some(true),
                    "0" | "false" | "no" => Some(false),
                    _ => None,
                };
                prop_assert_eq!(parse_bool(&v).ok(), want);
            }

            /// SLACK_WEBHOOK_URL: never panics, and the reason never repeats the URL's
            /// secret path or a password in it.
            #[test]
            fn check_webhook_never_echoes_the_url(
                scheme in prop_oneof![Just("https"), Just("http"), Just("ftp"), Just("")],
                userinfo in prop_oneof![Just(String::new()), "[a-z]{1,5}:SECRETPW[A-Z]{4}@"],
                host in prop_oneof![Just("hooks.slack.com"), Just("127.0.0.1"), Just("localhost"), Just("[::1]"), Just("")],
                port in prop_oneof![Just(String::new()), (0u32..70_000).prop_map(|p| format!(":{p}")), Just(":x".to_string())],
                path in prop_oneof![Just(String::new()), Just("/".to_string()), "/services/T[A-Z0-9]{3}/B[A-Z0-9]{3}/SECRETPATH[a-z0-9]{4}"],
                junk in ".{0,20}",
            ) {
                let url = format!("{scheme}://{userinfo}{host}{port}{path}");
                for u in [url.as_str(), junk.as_str()] {
                    if let Err(e) = check_webhook(u) {
                        prop_assert!(!e.contains("SECRET"), "{}", e);
                        prop_assert!(!e.contains("://"), "{}", e);
                    }
                }
            }
        }
    }
}
