//! The `compat-gate` command line: configuration (flag > env > default, §2.1), logging (§7),
//! output (§5), the one Pushgateway push (§6) and exit codes (§5.4). Usage errors exit 3, not
//! clap's 2: 2 means "actionable block" to the chain (§2.1.1).

use crate::gate::{evaluate, parse_target, GateOptions, Sources};
use crate::matrix::{load_matrix, Matrix};
use crate::report::{now_rfc3339, Report, UpgradeKind, Verdict};
use crate::tables::RemovedApiTable;
use clap::Parser;
use homelab_core::kube::{resolve_access, AccessOptions, KubeClient};
use homelab_core::pushgateway::{self, Method};
use homelab_core::version::KubeVersion;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DEFAULT_MATRIX: &str = "/etc/homelab/addon-compat.json";

const AFTER_HELP: &str = "\
Exit codes:
  0  safe to upgrade (also a patch upgrade, whose addon/API/runtime checks are inert)
  2  blocked: at least one [ACTIONABLE] blocker and nothing held
  3  gate error, usage error or doubt (fail-safe refusal)
  4  held: at least one [WAITING] or [PINNED] blocker (held wins on a mix)

A flag wins over its environment variable; an empty variable counts as unset. Booleans take
1|true|yes|on or 0|false|no|off. Credentials: --server, else KUBECONFIG, else the in-cluster
service account (KUBERNETES_SERVICE_HOST/_PORT), else ~/.kube/config.

validate-matrix [FILE]: validate the matrix only (no API call); prints
`OK: matrix valid (<n> addons)` and exits 0, or the error and exits 3.";

/// Preflight gate for Kubernetes upgrades: refuses a target when an addon, a removed API still
/// in use or a node's containerd is not ready for it. Read-only (GET only).
#[derive(Parser, Debug)]
#[command(
    name = "compat-gate",
    version = homelab_core::build_info::VERSION_LINE,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Target version MAJOR.MINOR.PATCH with an optional leading v [env: TARGET_VERSION]
    #[arg(value_name = "TARGET")]
    target_pos: Option<String>,
    /// Target version (same as the positional TARGET; both given must agree) [env: TARGET_VERSION]
    #[arg(long = "target", value_name = "VERSION")]
    target: Option<String>,
    /// Addon compatibility matrix [env: COMPAT_MATRIX] [default: /etc/homelab/addon-compat.json]
    #[arg(long, value_name = "FILE")]
    matrix: Option<PathBuf>,
    /// Replacement removed-API table [env: COMPAT_REMOVED_APIS] [default: compiled-in]
    #[arg(long = "removed-apis", value_name = "FILE")]
    removed_apis: Option<PathBuf>,
    /// Removed-API sources, a non-empty subset of metrics,annotations,helm [env: COMPAT_API_SOURCES] [default: metrics,annotations,helm]
    #[arg(long = "api-sources", value_name = "LIST")]
    api_sources: Option<String>,
    /// Maximum kubelet minors behind the target, 0-3 [env: COMPAT_KUBELET_MAX_SKEW] [default: 3]
    #[arg(long = "kubelet-max-skew", value_name = "N")]
    kubelet_max_skew: Option<String>,
    /// Kubeconfig file(s), ':'-separated [env: KUBECONFIG]
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<String>,
    /// Kubeconfig context [env: KUBE_CONTEXT] [default: current-context]
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// API server URL https://host:port (with --token-file/--ca-file) [env: KUBERNETES_SERVICE_HOST + KUBERNETES_SERVICE_PORT]
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Bearer token file [env: KUBE_TOKEN_FILE] [default: the service-account token]
    #[arg(long = "token-file", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// CA bundle of the API server [env: KUBE_CA_FILE] [default: the service-account ca.crt]
    #[arg(long = "ca-file", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Per-request timeout in seconds (connect at most 5) [env: COMPAT_TIMEOUT_SECONDS] [default: 30]
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<String>,
    /// Whole-run deadline in seconds; exceeded = exit 3 [env: COMPAT_DEADLINE_SECONDS] [default: 120]
    #[arg(long, value_name = "SECONDS")]
    deadline: Option<String>,
    /// Push the gauges once to the Pushgateway (POST) [env: COMPAT_GATE_PUSH] [default: false]
    #[arg(long)]
    push: bool,
    /// Pushgateway base URL, required with --push [env: PUSHGATEWAY_URL]
    #[arg(long = "pushgateway-url", value_name = "URL")]
    pushgateway_url: Option<String>,
    /// Pushgateway job (group) [env: PUSHGATEWAY_JOB] [default: k8s-upgrade]
    #[arg(long = "pushgateway-job", value_name = "JOB")]
    pushgateway_job: Option<String>,
    /// Print one JSON document (schema 1) instead of the human lines [env: COMPAT_JSON] [default: false]
    #[arg(long)]
    json: bool,
    /// Evaluate fully, never push [env: DRY_RUN] [default: false]
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Exit 0 instead of 2/4 after the push (3 stays 3) [env: COMPAT_EXIT_ZERO_ON_REFUSAL] [default: false]
    #[arg(long = "exit-zero-on-refusal")]
    exit_zero_on_refusal: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Validate the matrix only (no API call): exit 0 valid, 3 invalid
    #[command(name = "validate-matrix")]
    ValidateMatrix {
        /// Matrix file [env: COMPAT_MATRIX] [default: /etc/homelab/addon-compat.json]
        file: Option<PathBuf>,
    },
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: KubeVersion,
    pub matrix: PathBuf,
    pub removed_apis: Option<PathBuf>,
    pub sources: Sources,
    pub kubelet_max_skew: u32,
    pub access: AccessOptions,
    pub timeout: Duration,
    pub deadline: Duration,
    pub push: bool,
    pub pushgateway_url: Option<String>,
    pub pushgateway_job: String,
    pub json: bool,
    pub dry_run: bool,
    pub exit_zero_on_refusal: bool,
}

/// Parse a boolean env value (§2.1).
pub fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{name}={v:?} is not a boolean (1|true|yes|on or 0|false|no|off)"
        )),
    }
}

fn parse_secs(name: &str, v: &str) -> Result<Duration, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if n > 0 && n <= 86_400 => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{name}={v:?} is not a whole number of seconds (1-86400)"
        )),
    }
}

/// Credentials in a URL shown as `***`.
pub fn mask_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    url.to_string()
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn env_of(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

/// Flags + env → config. `Err` = usage error (exit 3). `json` tells whether `--json` was
/// resolved before the error (so the error document can still be printed).
fn resolve(cli: &Cli, env: Env<'_>) -> Result<Config, (String, bool)> {
    let json = match (cli.json, env_of(env, "COMPAT_JSON")) {
        (true, _) => true,
        (false, Some(v)) => parse_bool("COMPAT_JSON", &v).map_err(|e| (e, false))?,
        (false, None) => false,
    };
    let u = |e: String| (e, json);
    let flag_bool = |flag: bool, name: &str| -> Result<bool, (String, bool)> {
        if flag {
            return Ok(true);
        }
        match env_of(env, name) {
            Some(v) => parse_bool(name, &v).map_err(|e| (e, json)),
            None => Ok(false),
        }
    };
    let target_raw = match (&cli.target_pos, &cli.target) {
        (Some(p), Some(t)) if p != t => {
            return Err(u(format!(
                "positional TARGET {p:?} differs from --target {t:?}; give one"
            )))
        }
        (Some(p), _) => p.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => env_of(env, "TARGET_VERSION").ok_or_else(|| {
            u("target: missing; pass TARGET, --target or set TARGET_VERSION".into())
        })?,
    };
    let target = parse_target(&target_raw).map_err(u)?;
    let matrix = cli
        .matrix
        .clone()
        .or_else(|| env_of(env, "COMPAT_MATRIX").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MATRIX));
    let removed_apis = cli
        .removed_apis
        .clone()
        .or_else(|| env_of(env, "COMPAT_REMOVED_APIS").map(PathBuf::from));
    let sources = match cli
        .api_sources
        .clone()
        .or_else(|| env_of(env, "COMPAT_API_SOURCES"))
    {
        Some(s) => Sources::parse(&s).map_err(|e| u(format!("api sources: {e}")))?,
        None => Sources::all(),
    };
    let kubelet_max_skew = match cli
        .kubelet_max_skew
        .clone()
        .or_else(|| env_of(env, "COMPAT_KUBELET_MAX_SKEW"))
    {
        Some(s) => match s.trim().parse::<u32>() {
            Ok(n) if n <= 3 => n,
            _ => return Err(u(format!("kubelet max skew {s:?} is not an integer 0-3"))),
        },
        None => 3,
    };
    let timeout = match cli
        .timeout
        .clone()
        .or_else(|| env_of(env, "COMPAT_TIMEOUT_SECONDS"))
    {
        Some(s) => parse_secs("timeout", &s).map_err(u)?,
        None => Duration::from_secs(30),
    };
    let deadline = match cli
        .deadline
        .clone()
        .or_else(|| env_of(env, "COMPAT_DEADLINE_SECONDS"))
    {
        Some(s) => parse_secs("deadline", &s).map_err(u)?,
        None => Duration::from_secs(120),
    };
    let push = flag_bool(cli.push, "COMPAT_GATE_PUSH")?;
    let dry_run = flag_bool(cli.dry_run, "DRY_RUN")?;
    let exit_zero_on_refusal = flag_bool(cli.exit_zero_on_refusal, "COMPAT_EXIT_ZERO_ON_REFUSAL")?;
    let pushgateway_url = cli
        .pushgateway_url
        .clone()
        .or_else(|| env_of(env, "PUSHGATEWAY_URL"));
    if push && pushgateway_url.is_none() {
        return Err(u("--push needs --pushgateway-url or PUSHGATEWAY_URL".into()));
    }
    if let Some(p) = &pushgateway_url {
        if !(p.starts_with("http://") || p.starts_with("https://")) {
            return Err(u(format!(
                "pushgateway URL {} is not an http(s) URL",
                mask_url(p)
            )));
        }
    }
    let pushgateway_job = cli
        .pushgateway_job
        .clone()
        .or_else(|| env_of(env, "PUSHGATEWAY_JOB"))
        .unwrap_or_else(|| "k8s-upgrade".into());
    let access = AccessOptions {
        server: cli.server.clone().filter(|s| !s.is_empty()),
        kubeconfig: cli
            .kubeconfig
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| env_of(env, "KUBECONFIG")),
        context: cli.context.clone().or_else(|| env_of(env, "KUBE_CONTEXT")),
        token_file: cli
            .token_file
            .clone()
            .or_else(|| env_of(env, "KUBE_TOKEN_FILE").map(PathBuf::from)),
        ca_file: cli
            .ca_file
            .clone()
            .or_else(|| env_of(env, "KUBE_CA_FILE").map(PathBuf::from)),
        service_host: env_of(env, "KUBERNETES_SERVICE_HOST"),
        service_port: env_of(env, "KUBERNETES_SERVICE_PORT"),
        home: env_of(env, "HOME").map(PathBuf::from),
    };
    Ok(Config {
        target,
        matrix,
        removed_apis,
        sources,
        kubelet_max_skew,
        access,
        timeout,
        deadline,
        push,
        pushgateway_url,
        pushgateway_job,
        json,
        dry_run,
        exit_zero_on_refusal,
    })
}

/// The `--json` document for an error before any evaluation (usage, matrix, credentials).
pub fn early_error_json(
    target: Option<KubeVersion>,
    error: &str,
    matrix: Option<&Matrix>,
    table: Option<&RemovedApiTable>,
) -> Value {
    json!({
        "schema": 1,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "generated_at": now_rfc3339(),
        "target": target.map(|t| t.to_string()),
        "kubeadm_target": target.map(|t| t.kubeadm_arg()),
        "kind": null,
        "verdict": "error",
        "exit_code": 3,
        "cluster": {"apiserver": null, "nodes": []},
        "blockers": [],
        "notices": [],
        "checks": [],
        "matrix": {"path": matrix.map(|m| m.path.display().to_string()), "sha256": matrix.map(|m| m.sha256.clone())},
        "removed_api_table": {"origin": table.map(|t| t.origin_word()), "checked": table.map(|t| t.checked.clone()),
                              "covers_through": table.map(|t| t.covers_through.to_string())},
        "error": error,
    })
}

struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl Io<'_> {
    fn log(&mut self, line: &str) {
        let _ = writeln!(self.err, "{line}");
    }
    /// Write stdout; a failed write (EPIPE) is an error: a verdict nobody read is no pass.
    fn print(&mut self, text: &str) -> bool {
        self.out
            .write_all(text.as_bytes())
            .and_then(|_| self.out.flush())
            .is_ok()
    }
}

/// The clap definition, for completions and man pages (`homelab-ops-docs`).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The process entry point: real args, env and stdio.
pub fn main() -> i32 {
    let env = |k: &str| std::env::var(k).ok();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    run(std::env::args_os().collect(), &env, &mut out, &mut err)
}

/// Run with the given args, env and streams; returns the exit code.
pub fn run(args: Vec<OsString>, env: Env<'_>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut io = Io { out, err };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    if io.print(&e.render().to_string()) {
                        0
                    } else {
                        3
                    }
                }
                _ => {
                    let text = e.render().to_string();
                    let first = text
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("invalid arguments")
                        .trim_start_matches("error: ")
                        .to_string();
                    io.log(&format!("ERROR: usage: {first}; see --help"));
                    3
                }
            };
        }
    };
    if let Some(Cmd::ValidateMatrix { file }) = &cli.cmd {
        let path = file
            .clone()
            .or_else(|| env_of(env, "COMPAT_MATRIX").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MATRIX));
        return match load_matrix(&path) {
            Ok(m) => {
                if io.print(&format!("OK: matrix valid ({} addons)\n", m.addons.len())) {
                    0
                } else {
                    3
                }
            }
            Err(e) => {
                io.log(&format!("ERROR: {e}"));
                3
            }
        };
    }
    let cfg = match resolve(&cli, env) {
        Ok(c) => c,
        Err((e, json)) => {
            let target = cli
                .target_pos
                .as_deref()
                .or(cli.target.as_deref())
                .and_then(|t| KubeVersion::parse_target(t).ok());
            let msg = format!("usage: {e}");
            if json {
                let _ = io.print(&format!("{}\n", early_error_json(target, &msg, None, None)));
            }
            io.log(&format!("ERROR: {msg}"));
            return 3;
        }
    };
    run_gate(&cfg, &mut io)
}

fn early_fail(
    cfg: &Config,
    io: &mut Io<'_>,
    msg: &str,
    m: Option<&Matrix>,
    t: Option<&RemovedApiTable>,
) -> i32 {
    if cfg.json {
        let _ = io.print(&format!(
            "{}\n",
            early_error_json(Some(cfg.target), msg, m, t)
        ));
    } else {
        let _ = io.print(&format!(
            "[ACTIONABLE] gate error: {msg} \u{2014} refusing (fail-safe)\n"
        ));
    }
    io.log(&format!("ERROR: {msg}"));
    3
}

fn run_gate(cfg: &Config, io: &mut Io<'_>) -> i32 {
    let start = Instant::now();
    let matrix = match load_matrix(&cfg.matrix) {
        Ok(m) => m,
        Err(e) => return early_fail(cfg, io, &e.to_string(), None, None),
    };
    let table = match &cfg.removed_apis {
        Some(p) => match RemovedApiTable::load(p) {
            Ok(t) => t,
            Err(e) => return early_fail(cfg, io, &e, Some(&matrix), None),
        },
        None => RemovedApiTable::compiled_in(),
    };
    io.log(&format!(
        "INFO: compat-gate {} target={} matrix={} sha256={} sources={}",
        env!("CARGO_PKG_VERSION"),
        cfg.target,
        cfg.matrix.display(),
        matrix.sha256.get(..12).unwrap_or(&matrix.sha256),
        cfg.sources
    ));
    let access = match resolve_access(&cfg.access) {
        Ok(a) => a,
        Err(e) => return early_fail(cfg, io, &e.to_string(), Some(&matrix), Some(&table)),
    };
    let deadline_at = start + cfg.deadline;
    let client = match KubeClient::new(&access, cfg.timeout.min(cfg.deadline)) {
        Ok(c) => c.with_deadline(deadline_at),
        Err(e) => return early_fail(cfg, io, &e.to_string(), Some(&matrix), Some(&table)),
    };
    let opts = GateOptions {
        target: cfg.target,
        matrix,
        removed_apis: table,
        sources: cfg.sources,
        kubelet_max_skew: cfg.kubelet_max_skew,
        deadline: cfg.deadline.saturating_sub(start.elapsed()),
    };
    let mut report = evaluate(&opts, &client);
    // Keep the operator's deadline in the message, not the remainder.
    if let Some(e) = &mut report.error {
        if e.starts_with("deadline ") {
            if let Some(rest) = e
                .split_once("s exceeded during ")
                .map(|(_, r)| r.to_string())
            {
                *e = format!(
                    "deadline {}s exceeded during {rest}",
                    cfg.deadline.as_secs()
                );
            }
        }
    }
    log_report(&report, io);
    io.log(&format!(
        "INFO: done verdict={} requests={} ({} ms)",
        report.verdict.word(),
        homelab_core::kube::ClusterRead::request_count(&client),
        start.elapsed().as_millis()
    ));
    finish(cfg, &report, io)
}

fn log_report(r: &Report, io: &mut Io<'_>) {
    let kubelets = {
        let mut ks: Vec<KubeVersion> = r.cluster.nodes.iter().map(|n| n.kubelet).collect();
        ks.sort();
        match (ks.first(), ks.last()) {
            (Some(a), Some(b)) => format!("{a}..{b}"),
            _ => "?".into(),
        }
    };
    if let Some(a) = r.cluster.apiserver {
        io.log(&format!(
            "INFO: apiserver={a} nodes={} kubelets={kubelets} kind={}",
            r.cluster.nodes.len(),
            r.kind.map_or("?", UpgradeKind::word)
        ));
        if r.kind == Some(UpgradeKind::Patch) {
            io.log(&format!(
                "INFO: patch upgrade {a} -> {}: addon/API/containerd checks are inert",
                r.target
            ));
        }
    }
    for w in &r.warnings {
        io.log(w);
    }
    for c in &r.checks {
        io.log(&c.log_line());
    }
    for n in &r.notices {
        io.log(&format!("INFO: notice: {n}"));
    }
    for d in &r.deprecated {
        io.log(&format!("INFO: deprecated: {}", d.line()));
    }
}

fn push_gauges(cfg: &Config, r: &Report, io: &mut Io<'_>) {
    let b = r.gauges();
    let (blocked, held) = (
        b.iter()
            .find(|g| g.name == "k8s_upgrade_blocked")
            .map_or(1.0, |g| g.value),
        b.iter()
            .find(|g| g.name == "k8s_upgrade_held")
            .map_or(0.0, |g| g.value),
    );
    if cfg.dry_run {
        io.log(&format!(
            "INFO: dry-run: would push k8s_upgrade_blocked={blocked} k8s_upgrade_held={held}"
        ));
        return;
    }
    if !cfg.push {
        return;
    }
    let Some(url) = &cfg.pushgateway_url else {
        return;
    };
    let body = pushgateway::render(&b);
    let shown = format!(
        "{}/metrics/job/{}",
        mask_url(url.trim_end_matches('/')),
        cfg.pushgateway_job
    );
    let delays = [Duration::from_secs(1), Duration::from_secs(2)];
    let mut attempt = 0;
    loop {
        match pushgateway::push(
            url,
            &cfg.pushgateway_job,
            &[],
            &body,
            Method::Post,
            cfg.timeout.min(Duration::from_secs(10)),
        ) {
            Ok(()) => {
                io.log(&format!(
                    "INFO: pushed k8s_upgrade_blocked={blocked} k8s_upgrade_held={held} to {shown}"
                ));
                return;
            }
            Err(e) => {
                if attempt < delays.len() {
                    io.log(&format!("WARN: pushgateway push: {e}; retrying"));
                    std::thread::sleep(delays[attempt]);
                    attempt += 1;
                } else {
                    io.log(&format!("ERROR: pushgateway push failed: {e} ({shown})"));
                    return;
                }
            }
        }
    }
}

fn finish(cfg: &Config, r: &Report, io: &mut Io<'_>) -> i32 {
    push_gauges(cfg, r, io);
    let text = if cfg.json {
        format!("{}\n", r.to_json())
    } else {
        let mut s = r.stdout_lines().join("\n");
        s.push('\n');
        s
    };
    let printed = io.print(&text);
    if r.verdict == Verdict::Error {
        io.log(&format!(
            "ERROR: {}",
            r.error.as_deref().unwrap_or("gate error")
        ));
        return 3;
    }
    if !printed {
        io.log("ERROR: stdout: write failed (closed pipe?); a verdict nobody read is not a pass");
        return 3;
    }
    let code = r.exit_code();
    if cfg.exit_zero_on_refusal && (code == 2 || code == 4) {
        0
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn go(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let envf = move |k: &str| map.get(k).cloned();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut argv: Vec<OsString> = vec!["compat-gate".into()];
        argv.extend(args.iter().map(OsString::from));
        let code = run(argv, &envf, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn cfg(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let envf = move |k: &str| map.get(k).cloned();
        let mut argv: Vec<OsString> = vec!["compat-gate".into()];
        argv.extend(args.iter().map(OsString::from));
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        resolve(&cli, &envf).map_err(|(e, _)| e)
    }

    #[test]
    fn usage_errors_exit_3() {
        for (args, env, want) in [
            (vec!["--bogus"], vec![], "ERROR: usage: unexpected argument"),
            (vec![], vec![], "target: missing"),
            (
                vec!["1.36"],
                vec![],
                "target: \"1.36\" is not a valid version",
            ),
            (vec!["V1.36.2"], vec![], "not a valid version"),
            (
                vec!["1.36.2", "--target", "1.36.3"],
                vec![],
                "differs from --target",
            ),
            (
                vec!["1.36.2"],
                vec![("COMPAT_API_SOURCES", ",")],
                "api sources: empty",
            ),
            (
                vec!["1.36.2"],
                vec![("COMPAT_GATE_PUSH", "maybe")],
                "COMPAT_GATE_PUSH=\"maybe\" is not a boolean",
            ),
            (
                vec!["1.36.2", "--push"],
                vec![],
                "--push needs --pushgateway-url",
            ),
            (vec!["1.36.2", "--kubelet-max-skew", "4"], vec![], "0-3"),
            (vec!["1.36.2", "--timeout", "0"], vec![], "timeout"),
        ] {
            let (code, out, err) = go(&args, &env);
            assert_eq!(code, 3, "{args:?}: {err}");
            assert!(err.contains(want), "{args:?}: {err}");
            assert!(!out.contains("OK"), "{out}");
        }
    }

    #[test]
    fn help_and_version_exit_0() {
        let (code, out, _) = go(&["--help"], &[]);
        assert_eq!(code, 0);
        for want in [
            "TARGET_VERSION",
            "COMPAT_MATRIX",
            "COMPAT_REMOVED_APIS",
            "COMPAT_API_SOURCES",
            "COMPAT_KUBELET_MAX_SKEW",
            "KUBECONFIG",
            "KUBE_CONTEXT",
            "KUBERNETES_SERVICE_HOST",
            "KUBE_TOKEN_FILE",
            "KUBE_CA_FILE",
            "COMPAT_TIMEOUT_SECONDS",
            "COMPAT_DEADLINE_SECONDS",
            "COMPAT_GATE_PUSH",
            "PUSHGATEWAY_URL",
            "PUSHGATEWAY_JOB",
            "COMPAT_JSON",
            "DRY_RUN",
            "COMPAT_EXIT_ZERO_ON_REFUSAL",
            "Exit codes:",
            "validate-matrix",
        ] {
            assert!(out.contains(want), "--help lacks {want}");
        }
        let (code, out, _) = go(&["--version"], &[]);
        assert_eq!(code, 0);
        assert!(out.starts_with("compat-gate "));
    }

    #[test]
    fn flag_beats_env_and_empty_env_is_unset() {
        let c = cfg(
            &["--matrix", "/a.json"],
            &[
                ("TARGET_VERSION", "v1.36.2"),
                ("COMPAT_MATRIX", "/b.json"),
                ("COMPAT_JSON", ""),
                ("DRY_RUN", "YES"),
                ("PUSHGATEWAY_JOB", ""),
            ],
        )
        .unwrap();
        assert_eq!(c.target.to_string(), "1.36.2");
        assert_eq!(c.matrix, PathBuf::from("/a.json"));
        assert!(!c.json && c.dry_run);
        assert_eq!(c.pushgateway_job, "k8s-upgrade");
        assert_eq!(c.kubelet_max_skew, 3);
        assert_eq!(c.deadline, Duration::from_secs(120));
        let c = cfg(&["1.36.2"], &[("TARGET_VERSION", "garbage")]).unwrap();
        assert_eq!(c.target.to_string(), "1.36.2", "positional wins over env");
        let c = cfg(&["1.36.2", "--target", "1.36.2"], &[]).unwrap();
        assert_eq!(c.matrix, PathBuf::from(DEFAULT_MATRIX));
    }

    #[test]
    fn json_usage_error_still_prints_document() {
        let (code, out, _) = go(&["--json", "1.36"], &[]);
        assert_eq!(code, 3);
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["verdict"], "error");
        assert_eq!(v["exit_code"], 3);
        assert!(v["error"].as_str().unwrap().contains("target"));
    }

    #[test]
    fn masks_url_credentials() {
        assert_eq!(
            mask_url("https://user:pw@pg.example:9091/x"),
            "https://***@pg.example:9091/x"
        );
        assert_eq!(mask_url("http://127.0.0.1:9091"), "http://127.0.0.1:9091");
    }

    #[test]
    fn validate_matrix_no_network() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        std::fs::write(
            &p,
            r#"{"kyverno":{"workload":"kyverno/deployment/kyverno","versions":{"1.16":"1.34"}}}"#,
        )
        .unwrap();
        let (code, out, _) = go(&["validate-matrix", p.to_str().unwrap()], &[]);
        assert_eq!((code, out.as_str()), (0, "OK: matrix valid (1 addons)\n"));
        std::fs::write(&p, "{").unwrap();
        let (code, out, err) = go(
            &["validate-matrix"],
            &[("COMPAT_MATRIX", p.to_str().unwrap())],
        );
        assert_eq!(code, 3);
        assert!(out.is_empty());
        assert!(
            err.starts_with(&format!("ERROR: matrix {}: invalid JSON", p.display())),
            "{err}"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Exactly the eight words (any case) are booleans; a refusal names the variable and
        /// quotes the value.
        #[test]
        fn parse_bool_accepts_exactly_the_words(
            v in "\\PC{0,8}|(?i:1|0|true|false|yes|no|on|off)|[ \\t]?(?i:true|off)[ \\t]?",
        ) {
            let lower = v.to_ascii_lowercase();
            match parse_bool("COMPAT_JSON", &v) {
                Ok(b) => {
                    prop_assert!(["1", "true", "yes", "on", "0", "false", "no", "off"].contains(&lower.as_str()));
                    prop_assert_eq!(b, ["1", "true", "yes", "on"].contains(&lower.as_str()));
                }
                Err(e) => {
                    prop_assert!(!["1", "true", "yes", "on", "0", "false", "no", "off"].contains(&lower.as_str()));
                    prop_assert!(e.starts_with(&format!("COMPAT_JSON={v:?} ")), "{}", e);
                }
            }
        }

        /// Env durations: whole seconds 1..=86400 (blanks around allowed), anything else is an
        /// error naming the variable and quoting the value.
        #[test]
        fn parse_secs_bounds(
            n in prop_oneof![0u64..200_000, Just(86_400u64), Just(86_401), Just(u64::MAX)],
            pad in "[ \\t]{0,2}",
            junk in "\\PC{0,12}|[+-]?[0-9]{0,22}(\\.[0-9]?)?s?",
        ) {
            let text = format!("{pad}{n}{pad}");
            match parse_secs("deadline", &text) {
                Ok(d) => {
                    prop_assert!((1..=86_400).contains(&n));
                    prop_assert_eq!(d, Duration::from_secs(n));
                }
                Err(e) => {
                    prop_assert!(n == 0 || n > 86_400);
                    prop_assert_eq!(e, format!("deadline={text:?} is not a whole number of seconds (1-86400)"));
                }
            }
            match parse_secs("timeout", &junk) {
                Ok(d) => {
                    let n: u64 = junk.trim().parse().unwrap();
                    prop_assert_eq!(d.as_secs(), n);
                    prop_assert!((1..=86_400).contains(&n));
                }
                Err(e) => prop_assert!(e.starts_with(&format!("timeout={junk:?} ")), "{}", e),
            }
        }

        /// mask_url never shows the password of a URL.
        #[test]
        fn mask_url_hides_credentials(
            user in "[a-z]{1,8}",
            pw in "[A-Za-z0-9]{10,20}",
            host in "[a-z]{1,10}(:[0-9]{2,5})?",
            path in "(/[a-z0-9]{0,8}){0,3}",
            junk in "\\PC{0,40}",
        ) {
            let m = mask_url(&format!("https://{user}:{pw}@{host}{path}"));
            prop_assert!(!m.contains(&pw), "{}", m);
            let _ = mask_url(&junk);
        }
    }
}
