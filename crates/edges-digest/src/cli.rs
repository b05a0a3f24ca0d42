//! Command line (spec §2). Every option is a plain string here; `config.rs` merges it with its
//! environment twin (a flag wins) and validates, so the merge stays a pure function.

use clap::{Parser, Subcommand};

pub const AFTER_HELP: &str = "\
Every option has an environment twin (shown in brackets); a flag wins, an empty variable counts as unset.
Boolean options: bare flag = true, or --flag=<1|true|yes|0|false|no>.

Exit codes:
  0  posted, nothing new, dry-run, or another run holds the lock (skipped)
  1  internal error
  2  usage or configuration error (incl. empty SLACK_WEBHOOK_URL outside dry-run, --since in the future)
  3  database: connect, auth, missing `edge` table, state tables, query or commit
  4  Slack refused the post (3xx, 4xx other than 429)
  5  Slack unreachable after retries (429, 5xx, transport), Retry-After > 60 s, or delivery ambiguous
  6  policy/graph: no observed data for the namespace or window
  7  policy --check: the staged policy would deny observed edges
  8  policy/graph: stdout could not be written (closed pipe, full disk)

policy and graph: --since is a duration (7d, 36h) or a time (as above), default 7d; the window
ends at the database's now().";

/// Daily Slack digest of namespace edges first seen since the last successful digest.
#[derive(Debug, Parser, Default)]
#[command(name = "edges-digest", version = homelab_core::build_info::VERSION_LINE, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Postgres URL or key=value DSN of the goldmane_edges DB (required; sslmode disable|prefer|require|verify-ca|verify-full, sslrootcert) [env: DATABASE_URL]
    #[arg(long, global = true, value_name = "DSN")]
    pub database_url: Option<String>,

    /// Slack incoming-webhook URL, a secret; required unless dry-run [env: SLACK_WEBHOOK_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub slack_webhook_url: Option<String>,

    /// Channel override (`#alerts`); unset → the webhook's own channel [env: SLACK_CHANNEL]
    #[arg(long, global = true, value_name = "CHANNEL")]
    pub slack_channel: Option<String>,

    /// Print the message instead of posting; records nothing [env: DRY_RUN] [default: 0]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub dry_run: Option<String>,

    /// Window length on a first run, 1h..=7d [env: DIGEST_WINDOW] [default: 24h]
    #[arg(long, global = true, value_name = "DUR")]
    pub window: Option<String>,

    /// Re-scan before the previous window end (late rows), 0s..=24h [env: DIGEST_GRACE] [default: 2h]
    #[arg(long, global = true, value_name = "DUR")]
    pub grace: Option<String>,

    /// Longest catch-up after failed days, window+grace..=90d [env: DIGEST_MAX_CATCHUP] [default: 7d]
    #[arg(long, global = true, value_name = "DUR")]
    pub max_catchup: Option<String>,

    /// Window start: YYYY-MM-DD, "YYYY-MM-DD HH:MM[:SS]" (UTC) or RFC 3339; policy/graph also take a duration (7d), default 7d [env: DIGEST_SINCE]
    #[arg(long, global = true, value_name = "TIME")]
    pub since: Option<String>,

    /// Most edge lines in the message, 1..=200 [env: DIGEST_MAX_EDGES] [default: 40]
    #[arg(long, global = true, value_name = "N")]
    pub max_edges: Option<String>,

    /// Post "*0 new edges …*" when nothing is new [env: DIGEST_POST_EMPTY] [default: 0]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub post_empty: Option<String>,

    /// `table` (announce each edge once) or `none` (original stateless window) [env: DIGEST_STATE] [default: table]
    #[arg(long, global = true, value_name = "MODE")]
    pub state: Option<String>,

    /// On channel_not_found/channel_is_archived, tell the webhook's own channel [env: DIGEST_FAILURE_NOTICE] [default: 1]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub failure_notice: Option<String>,

    /// Print one JSON document on stdout for every outcome [env: DIGEST_JSON] [default: 0]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub json: Option<String>,

    /// Timeout of each Slack attempt in seconds, 1..=60 [env: SLACK_TIMEOUT_SECS] [default: 15]
    #[arg(long, global = true, value_name = "SECS")]
    pub slack_timeout_secs: Option<String>,

    /// Pushgateway base URL for run metrics (POST to /metrics/job/edges_digest) [env: PUSHGATEWAY_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub pushgateway_url: Option<String>,

    /// policy: the namespace (a DNS label; required); graph: only edges touching it [env: DIGEST_NAMESPACE]
    #[arg(long, global = true, value_name = "NS")]
    pub namespace: Option<String>,

    /// policy: k8s (default) | calico-staged; graph: mermaid (default) | dot | svg [env: DIGEST_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub format: Option<String>,

    /// policy: also print `observed-ingress` from destination-reported allows [env: DIGEST_INGRESS] [default: 0]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ingress: Option<String>,

    /// policy: CIDR excepted from the external rule (pod and service ranges); repeatable [env: DIGEST_EXCLUDE_CIDR, comma-separated]
    #[arg(long, global = true, value_name = "CIDR")]
    pub exclude_cidr: Vec<String>,

    /// policy: DNS peer instead of kube-system/k8s-app=kube-dns: a CIDR (NodeLocal DNS) or NAMESPACE/KEY=VALUE [env: DIGEST_DNS_PEER]
    #[arg(long, global = true, value_name = "PEER")]
    pub dns_peer: Option<String>,

    /// policy: omit the rule allowing traffic inside the namespace itself [env: DIGEST_NO_SELF] [default: 0]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_self: Option<String>,

    /// policy: list observed edges the staged policy would deny; exit 7 when there are any [env: DIGEST_CHECK] [default: 0]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub check: Option<String>,
}

#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Compute the digest and post it (the default; the original `digest` argument still works)
    #[command(visible_alias = "digest")]
    Run,
    /// Create the state tables edge_digest_run and edge_digest_announced, then exit (with --dry-run: report only)
    Migrate,
    /// Print a NetworkPolicy (or Calico StagedNetworkPolicy) allowing what NAMESPACE was observed doing; --check: what the staged policy would deny
    Policy,
    /// Print the namespace graph (mermaid, dot or a self-contained SVG) of the window
    Graph,
}
