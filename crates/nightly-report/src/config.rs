//! Validated configuration (spec §2.1). Every error names the variable at fault and never
//! carries a secret.

use crate::cli::Cli;
use homelab_core::http::UrlParts;
use homelab_core::kube::AccessOptions;
use homelab_core::Secret;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}: {}", self.var, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn err(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub pushgateway_url: String,
    pub pushgateway_job: Option<String>,
    pub webhook: Option<Secret>,
    pub channel: Option<String>,
    pub slack_timeout: Duration,
    pub namespace: String,
    pub stale_hours: u32,
    pub lookback_hours: u32,
    pub max_jobs: usize,
    pub gate: bool,
    pub matrix: PathBuf,
    pub gate_deadline: Duration,
    pub report_deadline: Duration,
    pub prometheus_url: Option<String>,
    pub dry_run: bool,
    pub json: bool,
    pub kube: AccessOptions,
    /// Replayed clock (Unix seconds), else the real one.
    pub now: Option<i64>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// `1|true|yes|on` / `0|false|no|off`, case-insensitive.
pub fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(err(
            var,
            format!(
                "expected 1|true|yes|on or 0|false|no|off, got {:?}",
                shorten(v)
            ),
        )),
    }
}

fn shorten(v: &str) -> String {
    v.chars().take(40).collect()
}

fn int(
    var: &'static str,
    v: &Option<String>,
    default: u64,
    lo: u64,
    hi: u64,
) -> Result<u64, ConfigError> {
    let Some(s) = nonempty(v) else {
        return Ok(default);
    };
    let n: u64 = s.trim().parse().map_err(|_| {
        err(
            var,
            format!("expected an integer {lo}..={hi}, got {:?}", shorten(s)),
        )
    })?;
    if !(lo..=hi).contains(&n) {
        return Err(err(var, format!("{n} is outside {lo}..={hi}")));
    }
    Ok(n)
}

fn is_loopback(host_port: &str) -> bool {
    let host = if let Some(r) = host_port.strip_prefix('[') {
        r.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

/// `http(s)://host[:port]`, an optional path prefix, no query or fragment.
fn check_base_url(var: &'static str, s: &str) -> Result<String, ConfigError> {
    let s = s.trim();
    let p = UrlParts::parse(s).ok_or_else(|| err(var, "expected http(s)://host[:port]"))?;
    if p.query.is_some() || s.contains('#') {
        return Err(err(
            var,
            "expected http(s)://host[:port] without query or fragment",
        ));
    }
    Ok(s.trim_end_matches('/').to_string())
}

/// The webhook rules of edges-digest §2.1; the reason never repeats the URL.
pub fn check_webhook(s: &str) -> Result<Secret, ConfigError> {
    const V: &str = "SLACK_WEBHOOK_URL";
    let s = s.trim();
    let p = UrlParts::parse(s).ok_or_else(|| err(V, "not an absolute http(s) URL"))?;
    if p.userinfo.is_some() {
        return Err(err(V, "must not carry userinfo"));
    }
    if p.scheme == "http" && !is_loopback(&p.host_port) {
        return Err(err(
            V,
            "must be https (http only to 127.0.0.1, ::1 or localhost)",
        ));
    }
    if p.path.trim_matches('/').is_empty() {
        return Err(err(V, "has no path"));
    }
    Ok(Secret::new(s))
}

fn check_channel(s: &str) -> Result<String, ConfigError> {
    let body = s.strip_prefix(['#', '@']).unwrap_or(s);
    let ok = (1..=80).contains(&body.len())
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(err(
            "SLACK_CHANNEL",
            format!(
                "{:?} does not match ^[#@]?[A-Za-z0-9._-]{{1,80}}$",
                shorten(s)
            ),
        ))
    }
}

fn check_namespace(s: &str) -> Result<String, ConfigError> {
    let ok = (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(err(
            "REPORT_NAMESPACE",
            format!("{:?} is not a namespace name (RFC 1123 label)", shorten(s)),
        ))
    }
}

impl Config {
    /// Validate the command line. `env` reads the alias `SLACK_WEBHOOK` and `HOME`.
    pub fn from_cli(c: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let dry_run = match nonempty(&c.dry_run) {
            Some(v) => parse_bool("DRY_RUN", v)?,
            None => false,
        };
        let json = match nonempty(&c.json) {
            Some(v) => parse_bool("REPORT_JSON", v)?,
            None => false,
        };
        let pushgateway_url = match nonempty(&c.pushgateway_url) {
            Some(u) => check_base_url("PUSHGATEWAY_URL", u)?,
            None => return Err(err("PUSHGATEWAY_URL", "required (http(s)://host[:port])")),
        };
        let webhook_raw = nonempty(&c.slack_webhook_url)
            .map(str::to_string)
            .or_else(|| env("SLACK_WEBHOOK").filter(|v| !v.trim().is_empty()));
        let webhook = match webhook_raw {
            Some(w) => Some(check_webhook(&w)?),
            None if dry_run => None,
            None => {
                return Err(err(
                    "SLACK_WEBHOOK_URL",
                    "required unless --dry-run (set SLACK_WEBHOOK_URL or SLACK_WEBHOOK)",
                ))
            }
        };
        let channel = nonempty(&c.slack_channel).map(check_channel).transpose()?;
        let gate_deadline = int(
            "GATE_DEADLINE_SECONDS",
            &c.gate_deadline_seconds,
            60,
            1,
            3600,
        )?;
        let report_deadline = int(
            "REPORT_DEADLINE_SECONDS",
            &c.report_deadline_seconds,
            120,
            2,
            3600,
        )?;
        if gate_deadline >= report_deadline {
            return Err(err(
                "GATE_DEADLINE_SECONDS",
                format!(
                    "{gate_deadline} must be below REPORT_DEADLINE_SECONDS ({report_deadline})"
                ),
            ));
        }
        let now = match nonempty(&c.now) {
            Some(s) => Some(
                time::OffsetDateTime::parse(
                    s.trim(),
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|_| {
                    err(
                        "REPORT_NOW",
                        format!("expected RFC 3339, got {:?}", shorten(s)),
                    )
                })?
                .unix_timestamp(),
            ),
            None => None,
        };
        let path = |v: &Option<String>| nonempty(v).map(|s| PathBuf::from(s.trim()));
        Ok(Config {
            pushgateway_url,
            pushgateway_job: nonempty(&c.report_pushgateway_job).map(|s| s.trim().to_string()),
            webhook,
            channel,
            slack_timeout: Duration::from_secs(int(
                "SLACK_TIMEOUT_SECS",
                &c.slack_timeout_secs,
                15,
                1,
                60,
            )?),
            namespace: match nonempty(&c.report_namespace) {
                Some(n) => check_namespace(n.trim())?,
                None => "k8s-upgrade".into(),
            },
            stale_hours: int("DETECTOR_STALE_HOURS", &c.detector_stale_hours, 26, 1, 168)? as u32,
            lookback_hours: int("JOBS_LOOKBACK_HOURS", &c.jobs_lookback_hours, 24, 1, 168)? as u32,
            max_jobs: int("MAX_JOBS", &c.max_jobs, 15, 1, 50)? as usize,
            gate: match nonempty(&c.report_gate) {
                Some(v) => parse_bool("REPORT_GATE", v)?,
                None => true,
            },
            matrix: path(&c.compat_matrix)
                .unwrap_or_else(|| PathBuf::from("/etc/homelab/addon-compat.json")),
            gate_deadline: Duration::from_secs(gate_deadline),
            report_deadline: Duration::from_secs(report_deadline),
            prometheus_url: nonempty(&c.prometheus_url)
                .map(|u| check_base_url("PROMETHEUS_URL", u))
                .transpose()?,
            dry_run,
            json,
            kube: AccessOptions {
                server: None,
                kubeconfig: nonempty(&c.kubeconfig).map(str::to_string),
                context: nonempty(&c.kube_context).map(str::to_string),
                token_file: path(&c.kube_token_file),
                ca_file: path(&c.kube_ca_file),
                service_host: nonempty(&c.kubernetes_service_host).map(str::to_string),
                service_port: nonempty(&c.kubernetes_service_port).map(str::to_string),
                home: env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
            },
            now,
        })
    }
}

/// `scheme://***@host:port/path` for log lines: userinfo masked, the rest kept.
pub fn redact_userinfo(url: &str) -> String {
    match UrlParts::parse(url).and_then(|p| p.userinfo) {
        Some(u) => url.replacen(&format!("{u}@"), "***@", 1),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const HOOK: &str = "https://hooks.slack.com/services/T000/B000/s3cr3tXXXXXXXXXXXX";

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut a = vec!["nightly-report", "--pushgateway-url", "http://pg:9091"];
        a.extend_from_slice(args);
        Config::from_cli(&Cli::try_parse_from(a).unwrap(), &|_| None)
    }

    #[test]
    fn defaults() {
        let c = parse(&["--slack-webhook-url", HOOK]).unwrap();
        assert_eq!(c.namespace, "k8s-upgrade");
        assert_eq!((c.stale_hours, c.lookback_hours, c.max_jobs), (26, 24, 15));
        assert_eq!(c.slack_timeout, Duration::from_secs(15));
        assert!(c.gate && !c.dry_run && !c.json);
        assert_eq!(c.matrix, PathBuf::from("/etc/homelab/addon-compat.json"));
        assert_eq!(
            (c.gate_deadline.as_secs(), c.report_deadline.as_secs()),
            (60, 120)
        );
        assert_eq!(c.channel, None);
    }

    #[test]
    fn empty_values_count_as_unset() {
        // Flag-over-env precedence is clap's (tested through the binary in tests/it/config.rs);
        // here: an empty value (env `MAX_JOBS=`) is the default, a set one is validated.
        let mut cli = Cli::try_parse_from(["nightly-report", "--max-jobs", "7"]).unwrap();
        cli.pushgateway_url = Some("http://pg:9091".into());
        cli.dry_run = Some("true".into());
        assert_eq!(Config::from_cli(&cli, &|_| None).unwrap().max_jobs, 7);
        cli.max_jobs = Some(String::new());
        cli.slack_channel = Some("  ".into());
        cli.report_gate = Some(String::new());
        let c = Config::from_cli(&cli, &|_| None).unwrap();
        assert_eq!((c.max_jobs, c.channel, c.gate), (15, None, true));
        cli.slack_webhook_url = Some(String::new());
        cli.dry_run = Some(String::new());
        let e = Config::from_cli(&cli, &|k| (k == "SLACK_WEBHOOK").then(String::new)).unwrap_err();
        assert_eq!(e.var, "SLACK_WEBHOOK_URL", "empty webhook outside dry-run");
    }

    #[test]
    fn webhook_alias_and_dry_run() {
        let cli =
            Cli::try_parse_from(["nightly-report", "--pushgateway-url", "http://pg:9091"]).unwrap();
        let c =
            Config::from_cli(&cli, &|k| (k == "SLACK_WEBHOOK").then(|| HOOK.to_string())).unwrap();
        assert_eq!(c.webhook.unwrap().expose(), HOOK);
        let e = Config::from_cli(&cli, &|_| None).unwrap_err();
        assert_eq!(e.var, "SLACK_WEBHOOK_URL");
        assert!(parse(&["--dry-run"]).unwrap().webhook.is_none());
        assert!(parse(&["--dry-run=on"]).unwrap().dry_run);
        assert!(parse(&["--dry-run=off", "--slack-webhook-url", HOOK]).is_ok());
    }

    #[test]
    fn each_bad_value_names_its_variable_and_never_the_webhook() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[
                    "--slack-webhook-url",
                    "http://hooks.slack.com/services/T/B/s3cr3tXXXXXXXXXXXX",
                ],
                "SLACK_WEBHOOK_URL",
            ),
            (
                &[
                    "--slack-webhook-url",
                    "https://u:s3cr3tXXXXXXXXXXXX@hooks.slack.com/x",
                ],
                "SLACK_WEBHOOK_URL",
            ),
            (
                &["--slack-webhook-url", "https://hooks.slack.com"],
                "SLACK_WEBHOOK_URL",
            ),
            (
                &["--slack-webhook-url", "s3cr3tXXXXXXXXXXXX"],
                "SLACK_WEBHOOK_URL",
            ),
            (
                &["--dry-run", "--slack-channel", "#bad channel"],
                "SLACK_CHANNEL",
            ),
            (
                &["--dry-run", "--slack-timeout-secs", "0"],
                "SLACK_TIMEOUT_SECS",
            ),
            (
                &["--dry-run", "--slack-timeout-secs", "61"],
                "SLACK_TIMEOUT_SECS",
            ),
            (
                &["--dry-run", "--report-namespace", "K8s_Upgrade"],
                "REPORT_NAMESPACE",
            ),
            (
                &["--dry-run", "--detector-stale-hours", "169"],
                "DETECTOR_STALE_HOURS",
            ),
            (
                &["--dry-run", "--jobs-lookback-hours", "x"],
                "JOBS_LOOKBACK_HOURS",
            ),
            (&["--dry-run", "--max-jobs", "51"], "MAX_JOBS"),
            (&["--dry-run", "--report-gate", "maybe"], "REPORT_GATE"),
            (
                &["--dry-run", "--gate-deadline-seconds", "120"],
                "GATE_DEADLINE_SECONDS",
            ),
            (
                &["--dry-run", "--report-deadline-seconds", "0"],
                "REPORT_DEADLINE_SECONDS",
            ),
            (
                &["--dry-run", "--prometheus-url", "prom:9090"],
                "PROMETHEUS_URL",
            ),
            (&["--dry-run", "--json=perhaps"], "REPORT_JSON"),
            (&["--dry-run", "--now", "yesterday"], "REPORT_NOW"),
            (&["--dry-run=maybe"], "DRY_RUN"),
        ];
        for (args, var) in cases {
            let e = parse(args).unwrap_err();
            assert_eq!(e.var, *var, "{args:?}");
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
        let cli = Cli::try_parse_from([
            "nightly-report",
            "--pushgateway-url",
            "pg:9091",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(
            Config::from_cli(&cli, &|_| None).unwrap_err().var,
            "PUSHGATEWAY_URL"
        );
        let cli = Cli::try_parse_from(["nightly-report", "--dry-run"]).unwrap();
        assert_eq!(
            Config::from_cli(&cli, &|_| None).unwrap_err().var,
            "PUSHGATEWAY_URL"
        );
    }

    #[test]
    fn loopback_http_webhook_is_allowed() {
        for h in [
            "http://127.0.0.1:9/services/x",
            "http://localhost/x",
            "http://[::1]:80/x",
        ] {
            assert!(check_webhook(h).is_ok(), "{h}");
        }
        assert_eq!(redact_userinfo("http://u:pw@pg:9091"), "http://***@pg:9091");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Env integers/durations: unset or blank gives the default, an in-range integer
        /// (blanks around allowed) is taken, anything else names the variable.
        #[test]
        fn int_bounds(
            n in prop_oneof![0u64..5000, Just(u64::MAX)],
            pad in "[ \\t]{0,2}",
            junk in "\\PC{0,50}|[+-]?[0-9]{0,22}(\\.[0-9])?s?",
            lo in 0u64..10,
            span in 0u64..4000,
        ) {
            let hi = lo + span;
            prop_assert_eq!(int("GATE_DEADLINE_SECONDS", &None, 60, lo, hi), Ok(60));
            prop_assert_eq!(int("GATE_DEADLINE_SECONDS", &Some(pad.clone()), 60, lo, hi), Ok(60));
            match int("GATE_DEADLINE_SECONDS", &Some(format!("{pad}{n}{pad}")), 60, lo, hi) {
                Ok(got) => {
                    prop_assert_eq!(got, n);
                    prop_assert!((lo..=hi).contains(&n));
                }
                Err(e) => {
                    prop_assert!(!(lo..=hi).contains(&n));
                    prop_assert_eq!(e, err("GATE_DEADLINE_SECONDS", format!("{n} is outside {lo}..={hi}")));
                }
            }
            match int("REPORT_DEADLINE_SECONDS", &Some(junk.clone()), 120, lo, hi) {
                Ok(got) => prop_assert!(got == 120 || ((lo..=hi).contains(&got) && junk.trim().parse::<u64>() == Ok(got))),
                Err(e) => {
                    prop_assert_eq!(e.var, "REPORT_DEADLINE_SECONDS");
                    // The value is quoted cut to 40 characters, or the number is out of range.
                    let quoted = format!("expected an integer {lo}..={hi}, got {:?}", shorten(&junk));
                    prop_assert!(e.reason == quoted || e.reason.ends_with(&format!(" is outside {lo}..={hi}")), "{}", e.reason);
                }
            }
        }

        /// Booleans: exactly the eight words (any case, blanks around); the error quotes at
        /// most 40 characters of the value.
        #[test]
        fn parse_bool_accepts_exactly_the_words(v in "\\PC{0,60}|[ ]?(?i:1|0|true|false|yes|no|on|off)[ \\t]?") {
            let w = v.trim().to_ascii_lowercase();
            let known = ["1", "true", "yes", "on", "0", "false", "no", "off"];
            match parse_bool("DRY_RUN", &v) {
                Ok(b) => {
                    prop_assert!(known.contains(&w.as_str()));
                    prop_assert_eq!(b, known[..4].contains(&w.as_str()));
                }
                Err(e) => {
                    prop_assert!(!known.contains(&w.as_str()));
                    prop_assert_eq!(e.var, "DRY_RUN");
                    let want = format!("got {:?}", shorten(&v));
                    prop_assert!(e.reason.ends_with(&want), "{}", e.reason);
                }
            }
        }

        /// The webhook is a secret: no refusal ever repeats it or its path, whatever the text.
        #[test]
        fn webhook_errors_never_echo_the_url(
            scheme in prop_oneof![Just("https"), Just("http"), Just("ftp"), Just("")],
            user in proptest::option::of("[a-z]{1,6}:[a-z0-9]{1,6}@"),
            host in prop_oneof![Just("hooks.slack.com".to_string()), Just("127.0.0.1:8080".to_string()), "[a-z]{1,10}"],
            secret in "[A-Za-z0-9]{16,32}",
            query in proptest::option::of("\\?[a-z=]{0,8}"),
            junk in "\\PC{0,60}",
        ) {
            let url = format!("{scheme}://{}{host}/services/T0/B0/{secret}{}", user.unwrap_or_default(), query.unwrap_or_default());
            if let Err(e) = check_webhook(&url) {
                let msg = e.to_string();
                prop_assert!(!msg.contains(&secret), "{}", msg);
                prop_assert_eq!(e.var, "SLACK_WEBHOOK_URL");
            }
            if let Err(e) = check_webhook(&junk) {
                prop_assert!(junk.trim().len() < 12 || !e.to_string().contains(junk.trim()), "{}", e);
            }
        }

        /// Channels, namespaces and base URLs: arbitrary text never panics and acceptance
        /// follows the documented patterns.
        #[test]
        fn names_and_urls(s in "\\PC{0,90}|[#@]?[A-Za-z0-9._-]{0,85}|[a-z0-9-]{0,70}|https?://[a-z0-9.:/?#-]{0,30}") {
            let body = s.strip_prefix(['#', '@']).unwrap_or(&s);
            let ch_ok = (1..=80).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
            prop_assert_eq!(check_channel(&s).is_ok(), ch_ok);
            let ns_ok = (1..=63).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-') && !s.ends_with('-');
            prop_assert_eq!(check_namespace(&s).is_ok(), ns_ok);
            if let Ok(u) = check_base_url("PUSHGATEWAY_URL", &s) {
                prop_assert!(!u.ends_with('/') && !u.contains('#') && !u.contains('?'), "{}", u);
            }
            let _ = redact_userinfo(&s);
        }
    }
}
