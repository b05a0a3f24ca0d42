//! Command line (clap derive). Every option has an environment twin; the flag wins (W2.1).
//! Values are read here as plain strings and validated in `config.rs`, so an empty
//! environment variable means "unset" and every error names the variable at fault.

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes:
  0  clean shutdown with nothing pending; `migrate` or `check` succeeded
  1  runtime failure (shutdown flush failed, DB authentication failing for --db-auth-exit,
     `check` failed, second signal during shutdown)
  2  usage or configuration error (invalid value, unreadable/mismatched certificates)

Empty environment variables count as unset. Health endpoints: /healthz /readyz /metrics.";

#[derive(Debug, Parser, Default)]
#[command(
    name = "goldmane-edge-aggregator",
    version = homelab_core::build_info::VERSION_LINE,
    about = "Stream Calico Goldmane flows over mTLS into the Postgres `edge` table (src_ns, dst_ns, action, reporter) and `egress_edge` (external destinations), reconciled with Flows.List.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Goldmane address, host:port or [v6]:port (https:// prefix accepted)
    /// [env: GOLDMANE_HOST] [default: goldmane.calico-system.svc:7443]
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub goldmane_host: Option<String>,
    /// TLS server name (SNI and SAN to verify) [env: GOLDMANE_SERVER_NAME]
    /// [default: goldmane.calico-system.svc, a SAN of every operator-issued Goldmane cert]
    #[arg(long, global = true, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Skip server certificate verification (client cert still sent): 1/true/0/false
    /// [env: GOLDMANE_TLS_INSECURE] [default: 0]
    #[arg(long, global = true, value_name = "BOOL")]
    pub tls_insecure: Option<String>,
    /// Client certificate PEM chain, leaf first [env: GOLDMANE_CLIENT_CERT] [default: /etc/goldmane/client/tls.crt]
    #[arg(long, global = true, value_name = "PATH")]
    pub client_cert: Option<String>,
    /// Client key PEM (PKCS#1, PKCS#8 or SEC1) [env: GOLDMANE_CLIENT_KEY] [default: /etc/goldmane/client/tls.key]
    #[arg(long, global = true, value_name = "PATH")]
    pub client_key: Option<String>,
    /// CA bundle PEM, the only trust roots [env: GOLDMANE_CA] [default: /etc/goldmane/ca/tigera-ca-bundle.crt]
    #[arg(long, global = true, value_name = "PATH")]
    pub ca: Option<String>,
    /// Postgres URL or key=value DSN; sslmode as libpq
    /// (disable|allow|prefer|require|verify-ca|verify-full, sslrootcert). WARNING: a flag value
    /// is visible in `ps`; prefer the environment [env: DATABASE_URL] [required unless dry-run]
    #[arg(long, global = true, value_name = "DSN")]
    pub database_url: Option<String>,
    /// Stream and classify, log would-be upserts, never touch Postgres [env: DRY_RUN] [default: 0]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "1")]
    pub dry_run: Option<String>,
    /// Aggregation interval sent in the request, seconds [env: GEA_AGGREGATION_INTERVAL] [default: 15]
    #[arg(long, global = true, value_name = "SECS")]
    pub aggregation_interval: Option<String>,
    /// Look-back on (re)connect and of reconciliation, 0..=3570 s (the ring holds 242 × 15 s);
    /// 0 = live only (reconciliation then covers the ring) [env: GEA_BACKFILL_SECS] [default: 3570]
    #[arg(long, global = true, value_name = "SECS")]
    pub backfill: Option<String>,
    /// Seconds between Flows.List reconciliations, 1..=3600; 0 = only after each (re)connect
    /// [env: GEA_RECONCILE_SECS] [default: 300]
    #[arg(long, global = true, value_name = "SECS")]
    pub reconcile: Option<String>,
    /// Flush interval, 1..=300 s [env: GEA_FLUSH_INTERVAL_SECS] [default: 5]
    #[arg(long, global = true, value_name = "SECS")]
    pub flush_interval: Option<String>,
    /// Early-flush threshold and rows per statement [env: GEA_BATCH_MAX_EDGES] [default: 1000]
    #[arg(long, global = true, value_name = "N")]
    pub batch_max: Option<String>,
    /// Pending-map cap in edges [env: GEA_MAX_PENDING_EDGES] [default: 100000]
    #[arg(long, global = true, value_name = "N")]
    pub max_pending: Option<String>,
    /// De-duplication window, seconds [env: GEA_DEDUP_WINDOW_SECS] [default: 60]
    #[arg(long, global = true, value_name = "SECS")]
    pub dedup_window: Option<String>,
    /// Silent open stream -> reconnect after this many seconds [env: GEA_STALL_TIMEOUT_SECS] [default: 300]
    #[arg(long, global = true, value_name = "SECS")]
    pub stall_timeout: Option<String>,
    /// Cap of stream and DB retry backoff, seconds [env: GEA_BACKOFF_MAX_SECS] [default: 60]
    #[arg(long, global = true, value_name = "SECS")]
    pub backoff_max: Option<String>,
    /// /healthz /readyz /metrics listener, or `off` [env: GEA_HEALTH_ADDR] [default: 0.0.0.0:8080]
    #[arg(long, global = true, value_name = "ADDR")]
    pub health_addr: Option<String>,
    /// Final-flush budget on SIGTERM, seconds [env: GEA_SHUTDOWN_TIMEOUT_SECS] [default: 20]
    #[arg(long, global = true, value_name = "SECS")]
    pub shutdown_timeout: Option<String>,
    /// Exit 1 after DB authentication failed this long, seconds; 0 = never
    /// [env: GEA_DB_AUTH_EXIT_SECS] [default: 600]
    #[arg(long, global = true, value_name = "SECS")]
    pub db_auth_exit: Option<String>,
    /// Log format: text or json [env: GEA_LOG_FORMAT] [default: text]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Stream, aggregate and upsert until SIGTERM (default; alias `aggregate`)
    #[command(alias = "aggregate")]
    Run,
    /// Create or migrate the edge and egress_edge tables (idempotent, advisory-locked) and exit
    Migrate,
    /// Check config, certs, DB and one Goldmane stream message (≤ 20 s); writes nothing
    Check,
}
