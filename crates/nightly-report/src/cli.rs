//! Command line (spec §2.1): every variable has a long flag twin; a flag wins over its env
//! variable; an empty env value counts as unset. Values stay strings here and are validated in
//! `config.rs`, so every error names the variable.

use clap::Parser;

const AFTER: &str = "\
Booleans take 1|true|yes|on or 0|false|no|off; an empty variable counts as unset.

Exit codes:
  0  posted (complete or degraded), or printed (--dry-run, --json with --dry-run)
  1  internal error
  2  usage or configuration error (ERROR config <VAR>: …), incl. no webhook outside --dry-run
  4  Slack refused the post (3xx, 4xx other than 429); the log line carries a hint
  5  Slack unreachable after retries (429, 5xx, transport) or the answer was lost after sending

Manual run in the cluster:
  kubectl -n k8s-upgrade create job --from=cronjob/k8s-upgrade-nightly-report nightly-report-test
Off-cluster: nightly-report --dry-run";

#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "nightly-report",
    version = homelab_core::build_info::VERSION_LINE,
    about = "One Slack message each morning with the outcome of the night's Kubernetes upgrade chain.",
    long_about = "Reads the chain's Pushgateway gauges, the nodes and the Jobs of the chain's namespace \
(read-only), re-runs the compat gate for fresh reasons when last night's target was blocked or held, \
and posts one summary to Slack. An unreadable source still yields a post naming what is missing.",
    after_help = AFTER
)]
pub struct Cli {
    /// Pushgateway base URL, http(s)://host[:port] (required; userinfo is logged as ***).
    #[arg(
        long,
        env = "PUSHGATEWAY_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub pushgateway_url: Option<String>,

    /// Only read Pushgateway groups with this `job` label [default: all groups].
    #[arg(
        long,
        env = "REPORT_PUSHGATEWAY_JOB",
        value_name = "JOB",
        hide_env_values = true
    )]
    pub report_pushgateway_job: Option<String>,

    /// Slack incoming-webhook URL (secret; also read from SLACK_WEBHOOK). Required unless --dry-run.
    #[arg(
        long,
        env = "SLACK_WEBHOOK_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub slack_webhook_url: Option<String>,

    /// Slack channel override (#name or @user) [default: none, the webhook's own channel].
    #[arg(
        long,
        env = "SLACK_CHANNEL",
        value_name = "CHANNEL",
        hide_env_values = true
    )]
    pub slack_channel: Option<String>,

    /// Timeout per Slack attempt in seconds, 1..=60 [default: 15].
    #[arg(
        long,
        env = "SLACK_TIMEOUT_SECS",
        value_name = "SECS",
        hide_env_values = true
    )]
    pub slack_timeout_secs: Option<String>,

    /// Namespace of the chain's Jobs [default: k8s-upgrade].
    #[arg(
        long,
        env = "REPORT_NAMESPACE",
        value_name = "NS",
        hide_env_values = true
    )]
    pub report_namespace: Option<String>,

    /// Hours after which the detector counts as stale, 1..=168 [default: 26].
    #[arg(
        long,
        env = "DETECTOR_STALE_HOURS",
        value_name = "H",
        hide_env_values = true
    )]
    pub detector_stale_hours: Option<String>,

    /// Hours of Jobs listed, 1..=168 [default: 24].
    #[arg(
        long,
        env = "JOBS_LOOKBACK_HOURS",
        value_name = "H",
        hide_env_values = true
    )]
    pub jobs_lookback_hours: Option<String>,

    /// Job lines shown, 1..=50 [default: 15].
    #[arg(long, env = "MAX_JOBS", value_name = "N", hide_env_values = true)]
    pub max_jobs: Option<String>,

    /// Re-run the compat gate for fresh reasons: on|off [default: on].
    #[arg(long, env = "REPORT_GATE", value_name = "BOOL", hide_env_values = true)]
    pub report_gate: Option<String>,

    /// Compatibility matrix handed to the gate [default: /etc/homelab/addon-compat.json].
    #[arg(
        long,
        env = "COMPAT_MATRIX",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub compat_matrix: Option<String>,

    /// Budget of the gate run in seconds, below the report deadline [default: 60].
    #[arg(
        long,
        env = "GATE_DEADLINE_SECONDS",
        value_name = "SECS",
        hide_env_values = true
    )]
    pub gate_deadline_seconds: Option<String>,

    /// Budget of the whole gathering phase incl. the gate, in seconds [default: 120].
    #[arg(
        long,
        env = "REPORT_DEADLINE_SECONDS",
        value_name = "SECS",
        hide_env_values = true
    )]
    pub report_deadline_seconds: Option<String>,

    /// Prometheus base URL for the 7-day trend line [default: unset, no trend line].
    #[arg(
        long,
        env = "PROMETHEUS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub prometheus_url: Option<String>,

    /// Gather and decide, print the text that would be posted; no webhook needed, no POST [default: off].
    #[arg(long, env = "DRY_RUN", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", hide_env_values = true)]
    pub dry_run: Option<String>,

    /// Print one JSON document on stdout (and still post unless --dry-run) [default: off].
    #[arg(long, env = "REPORT_JSON", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", hide_env_values = true)]
    pub json: Option<String>,

    /// Kubeconfig file(s) [default: in-cluster service account, then ~/.kube/config].
    #[arg(long, env = "KUBECONFIG", value_name = "FILE", hide_env_values = true)]
    pub kubeconfig: Option<String>,

    /// Kubeconfig context [default: current-context].
    #[arg(
        long,
        env = "KUBE_CONTEXT",
        value_name = "NAME",
        hide_env_values = true
    )]
    pub kube_context: Option<String>,

    /// In-cluster API host (set by the kubelet).
    #[arg(
        long,
        env = "KUBERNETES_SERVICE_HOST",
        value_name = "HOST",
        hide_env_values = true
    )]
    pub kubernetes_service_host: Option<String>,

    /// In-cluster API port (set by the kubelet).
    #[arg(
        long,
        env = "KUBERNETES_SERVICE_PORT",
        value_name = "PORT",
        hide_env_values = true
    )]
    pub kubernetes_service_port: Option<String>,

    /// Service-account token file [default: /var/run/secrets/kubernetes.io/serviceaccount/token].
    #[arg(
        long,
        env = "KUBE_TOKEN_FILE",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub kube_token_file: Option<String>,

    /// CA bundle of the API server [default: the service account's ca.crt].
    #[arg(
        long,
        env = "KUBE_CA_FILE",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub kube_ca_file: Option<String>,

    /// Replay a morning: the report's clock as RFC 3339 [default: now]. For fixtures and demos.
    #[arg(
        long,
        env = "REPORT_NOW",
        value_name = "RFC3339",
        hide_env_values = true
    )]
    pub now: Option<String>,
}
