//! `nightly-report`: one Slack message each morning with the night's upgrade-chain outcome
//! (spec `nightly-report.md`). `run` wires config → gather (bounded, concurrent) → decide
//! (pure) → gate (only where §4.3 says) → message → post, and owns the exit-code mapping:
//! 0 posted/printed · 1 internal · 2 config · 4 Slack refused · 5 Slack unreachable/ambiguous.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod decide;
pub mod entry;
pub mod gate;
pub mod gauges;
pub mod pushgw;
pub mod report;
pub mod trend;
pub mod version;

use cluster::Cluster;
use config::Config;
use decide::{decide, DecideCfg, Inputs};
use gate::{Gate, GateResult};
use homelab_core::log::{leveled_line, Channel, Logger, Severity};
use homelab_core::slack::{self, HintContext, Outcome, Pacer, RetryPolicy};
use pushgw::MetricsSource;
use report::{json_doc, Missing, SlackReport, SourceReport, View};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trend::Trend;

pub const EXIT_OK: i32 = 0;
pub const EXIT_INTERNAL: i32 = 1;
pub const EXIT_CONFIG: i32 = 2;

/// The process's log: `<RFC 3339> <LEVEL> <text>` on stderr (§6.1).
pub struct Log(Logger);

impl Log {
    pub fn stderr() -> Self {
        Log(Logger::with_syslog_path(
            "nightly-report",
            Channel::Stderr,
            None,
        ))
    }
    pub fn discard() -> Self {
        Log(Logger::with_syslog_path(
            "nightly-report",
            Channel::Discard,
            None,
        ))
    }
    pub fn line(&self, sev: Severity, text: &str) {
        let _ = self.0.emit(sev, &leveled_line(sev, text), text);
    }
    pub fn info(&self, t: &str) {
        self.line(Severity::Info, t);
    }
    pub fn warn(&self, t: &str) {
        self.line(Severity::Warning, t);
    }
    pub fn error(&self, t: &str) {
        self.line(Severity::Error, t);
    }
}

/// The world the report reads from.
pub struct Sources {
    pub metrics: Arc<dyn MetricsSource>,
    pub cluster: Arc<dyn Cluster>,
    pub gate: Arc<dyn Gate>,
    pub trend: Option<Arc<dyn Trend>>,
}

/// Build the real sources from the config.
pub fn real_sources(cfg: &Config, started: Instant) -> Sources {
    let metrics: Arc<dyn MetricsSource> = Arc::new(pushgw::Pushgateway::new(&cfg.pushgateway_url));
    let deadline = started + cfg.report_deadline;
    let client = homelab_core::kube::resolve_access(&cfg.kube)
        .and_then(|a| homelab_core::kube::KubeClient::new(&a, Duration::from_secs(10)))
        .map(|c| Arc::new(c.with_deadline(deadline)));
    let (cluster, gate): (Arc<dyn Cluster>, Arc<dyn Gate>) = match client {
        Ok(c) => (
            Arc::new(cluster::Kube(Arc::clone(&c))),
            gate::in_process(c, cfg.matrix.clone()),
        ),
        Err(e) => {
            let why = e.to_string();
            (
                Arc::new(cluster::Unavailable(why.clone())),
                Arc::new(gate::NoGate(why)),
            )
        }
    };
    let trend = cfg
        .prometheus_url
        .as_ref()
        .map(|u| Arc::new(trend::Prometheus::new(u)) as Arc<dyn Trend>);
    Sources {
        metrics,
        cluster,
        gate,
        trend,
    }
}

enum Got {
    Metrics(Result<Vec<homelab_core::pushgateway::Group>, String>),
    Nodes(Result<Vec<decide::Node>, String>),
    Jobs(Result<Vec<decide::Job>, String>),
    Trend(Result<String, String>),
}

/// What gathering produced.
pub struct Gathered {
    pub inputs: Inputs,
    pub trend: Option<Result<String, String>>,
    pub sources: Vec<SourceReport>,
}

fn deadline_err<T>() -> Result<T, String> {
    Err("deadline".to_string())
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Read Pushgateway, nodes, Jobs (and the trend) concurrently; whatever is unfinished at the
/// deadline counts as failed (`deadline`).
pub fn gather(cfg: &Config, src: &Sources, now: i64, started: Instant, log: &Log) -> Gathered {
    let (tx, rx) = mpsc::channel::<(&'static str, Got, u64)>();
    let spawn = |name: &'static str, f: Box<dyn FnOnce() -> Got + Send>| {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let got = f();
            let _ = tx.send((name, got, ms(t.elapsed())));
        });
    };
    let m = Arc::clone(&src.metrics);
    spawn("pushgateway", Box::new(move || Got::Metrics(m.groups())));
    let c = Arc::clone(&src.cluster);
    spawn("nodes", Box::new(move || Got::Nodes(c.nodes())));
    let c = Arc::clone(&src.cluster);
    let ns = cfg.namespace.clone();
    spawn("jobs", Box::new(move || Got::Jobs(c.jobs(&ns))));
    let mut expected = 3;
    if let Some(t) = &src.trend {
        let t = Arc::clone(t);
        spawn("prometheus", Box::new(move || Got::Trend(t.symbols(now))));
        expected += 1;
    }
    drop(tx);
    let deadline = started + cfg.report_deadline;
    let (mut metrics, mut nodes, mut jobs, mut trend) = (None, None, None, None);
    let mut sources = Vec::new();
    for _ in 0..expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((name, got, took)) = rx.recv_timeout(left) else {
            break;
        };
        let err = match &got {
            Got::Metrics(r) => r.as_ref().err().cloned(),
            Got::Nodes(r) => r.as_ref().err().cloned(),
            Got::Jobs(r) => r.as_ref().err().cloned(),
            Got::Trend(r) => r.as_ref().err().cloned(),
        };
        match &err {
            None => log.info(&format!("source {name} ok ({took} ms)")),
            Some(e) => log.warn(&format!("source {name} failed: {e}")),
        }
        sources.push(SourceReport {
            name,
            ok: err.is_none(),
            error: err,
            ms: took,
        });
        match got {
            Got::Metrics(r) => metrics = Some(r),
            Got::Nodes(r) => nodes = Some(r),
            Got::Jobs(r) => jobs = Some(r),
            Got::Trend(r) => trend = Some(r),
        }
    }
    let total = ms(started.elapsed());
    let mut late = |name: &'static str, present: bool| {
        if !present {
            log.warn(&format!("source {name} failed: deadline"));
            sources.push(SourceReport {
                name,
                ok: false,
                error: Some("deadline".into()),
                ms: total,
            });
        }
    };
    late("pushgateway", metrics.is_some());
    late("nodes", nodes.is_some());
    late("jobs", jobs.is_some());
    if src.trend.is_some() {
        late("prometheus", trend.is_some());
    }
    let groups = metrics.unwrap_or_else(deadline_err);
    let gauges = groups.map(|g| {
        let (gs, warnings) = gauges::select(&g, cfg.pushgateway_job.as_deref());
        for w in warnings {
            log.warn(&w);
        }
        gs
    });
    Gathered {
        inputs: Inputs {
            gauges,
            nodes: nodes.unwrap_or_else(deadline_err),
            jobs: jobs.unwrap_or_else(deadline_err),
        },
        trend: src
            .trend
            .as_ref()
            .map(|_| trend.unwrap_or_else(deadline_err)),
        sources,
    }
}

/// Run the gate within what is left of the gathering budget.
pub fn run_gate(
    cfg: &Config,
    gate: &Arc<dyn Gate>,
    target: &str,
    started: Instant,
) -> (GateResult, u64) {
    let t = Instant::now();
    let left = (started + cfg.report_deadline).saturating_duration_since(t);
    let budget = cfg.gate_deadline.min(left);
    if budget.is_zero() {
        return (GateResult::error("deadline"), 0);
    }
    let (tx, rx) = mpsc::channel();
    let g = Arc::clone(gate);
    let target = target.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(g.check(&target, budget));
    });
    // A little grace for the gate to report its own deadline error.
    let r = rx
        .recv_timeout(budget + Duration::from_millis(500))
        .unwrap_or_else(|_| GateResult::error(format!("deadline {}s exceeded", budget.as_secs())));
    (r, ms(t.elapsed()))
}

struct LogPacer<'a>(&'a Log);

impl Pacer for LogPacer<'_> {
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
    fn on_retry(&mut self, attempt: u32, max: u32, reason: &str, after: Duration) {
        self.0.warn(&format!(
            "slack attempt {attempt}/{max} failed: {reason}; retrying in {}s",
            after.as_secs()
        ));
    }
}

/// Post the text; log the outcome lines of §6.1.
pub fn deliver(cfg: &Config, text: &str, log: &Log) -> (i32, SlackReport) {
    let Some(hook) = &cfg.webhook else {
        log.error("config SLACK_WEBHOOK_URL: required unless --dry-run");
        return (EXIT_CONFIG, SlackReport::default());
    };
    let policy = RetryPolicy {
        attempt_timeout: cfg.slack_timeout,
        ..RetryPolicy::default()
    };
    let payload = slack::payload(text, cfg.channel.as_deref());
    let outcome = slack::post(hook, &payload, &policy, None, &mut LogPacer(log));
    let channel = cfg
        .channel
        .clone()
        .unwrap_or_else(|| "webhook-default".into());
    let ctx = HintContext {
        channel: &channel,
        secret_name: "k8s-upgrade-creds",
        binary: "nightly-report",
    };
    let mut rep = SlackReport {
        posted: false,
        http_status: outcome.http_status(),
        error: None,
    };
    match &outcome {
        Outcome::Delivered {
            status,
            unexpected_body,
            ..
        } => {
            rep.posted = true;
            log.info(&format!("posted (HTTP {status})"));
            if let Some(b) = unexpected_body {
                log.warn(&format!(
                    "slack answered HTTP {status} with an unexpected body: {}",
                    homelab_core::http::excerpt(b, 200, &[])
                ));
            }
        }
        Outcome::Refused { status, body, .. } => {
            let l = format!(
                "slack rejected the report: HTTP {status} {body} — {}",
                slack::hint(*status, body, &ctx)
            );
            log.error(&l);
            rep.error = Some(l);
        }
        Outcome::Unreachable {
            reason, attempts, ..
        } => {
            let l = format!("slack unreachable after {attempts} attempts: {reason}");
            log.error(&l);
            rep.error = Some(l);
        }
        Outcome::Ambiguous { reason, .. } => {
            let l = format!("slack response lost after sending ({reason})");
            log.error(&l);
            rep.error = Some(l);
        }
    }
    (outcome.exit_code(), rep)
}

fn write_stdout(s: &str) -> bool {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())
        .and_then(|()| o.write_all(b"\n"))
        .and_then(|()| o.flush())
        .is_ok()
}

/// The whole run with injected sources and clock.
pub fn run_with(cfg: &Config, src: &Sources, now: i64, log: &Log) -> i32 {
    let started = Instant::now();
    log.info(&format!(
        "start namespace={} pushgateway={} webhook={} dry_run={}",
        cfg.namespace,
        config::redact_userinfo(&cfg.pushgateway_url),
        cfg.webhook
            .as_ref()
            .map_or_else(|| "-".to_string(), |w| homelab_core::redact_url(w.expose())),
        cfg.dry_run
    ));
    let g = gather(cfg, src, now, started, log);
    let dcfg = DecideCfg {
        stale_hours: cfg.stale_hours,
        lookback_hours: cfg.lookback_hours,
        gate_enabled: cfg.gate,
    };
    let d = decide(&g.inputs, now, &dcfg);
    if d.detector.clock_skew {
        log.warn("clock skew: the detector's last-run timestamp is more than 300 s in the future; age counted as 0");
    }
    let mut sources = g.sources;
    let mut missing: Vec<Missing> = Vec::new();
    for (name, r) in [
        ("pushgateway", g.inputs.gauges.as_ref().err()),
        ("nodes", g.inputs.nodes.as_ref().err()),
        ("jobs", g.inputs.jobs.as_ref().err()),
    ] {
        if let Some(e) = r {
            missing.push(Missing {
                source: name,
                reason: e.clone(),
            });
        }
    }
    let gate = match (d.gate, d.target) {
        (true, Some(t)) => {
            let (r, took) = run_gate(cfg, &src.gate, &t.to_string(), started);
            match &r.error {
                None => log.info(&format!("source gate ok ({took} ms)")),
                Some(e) => log.warn(&format!("source gate failed: {e}")),
            }
            sources.push(SourceReport {
                name: "gate",
                ok: r.error.is_none(),
                error: r.error.clone(),
                ms: took,
            });
            if let Some(e) = &r.error {
                missing.push(Missing {
                    source: "gate",
                    reason: e.clone(),
                });
            }
            Some(r)
        }
        _ => None,
    };
    let trend = match g.trend {
        Some(Ok(t)) => Some(t),
        _ => None,
    };
    let view = View {
        now,
        namespace: &cfg.namespace,
        lookback_hours: cfg.lookback_hours,
        max_jobs: cfg.max_jobs,
        decision: &d,
        gauges: g.inputs.gauges.as_ref().map_err(|_| ()),
        nodes: g.inputs.nodes.as_ref().map(Vec::as_slice).map_err(|_| ()),
        gate: gate.as_ref(),
        gate_disabled: !cfg.gate,
        trend,
        missing: &missing,
    };
    let text = view.text();
    log.info(&format!(
        "outcome {} target={} degraded={}",
        d.outcome.id(),
        d.target.map_or_else(|| "-".to_string(), |t| t.to_string()),
        !missing.is_empty()
    ));
    let (code, slack) = if cfg.dry_run {
        (EXIT_OK, SlackReport::default())
    } else {
        deliver(cfg, &text, log)
    };
    if cfg.json {
        let doc = json_doc(&view, &text, &sources, &slack);
        if !write_stdout(&doc.to_string()) {
            log.error("stdout: write failed");
            return if code == EXIT_OK { EXIT_INTERNAL } else { code };
        }
    } else if cfg.dry_run && !write_stdout(&text) {
        log.error("stdout: write failed");
        return EXIT_INTERNAL;
    }
    code
}

/// Entry point from `main`: validate, then run against the real world.
pub fn run(cli: &cli::Cli) -> i32 {
    let log = Log::stderr();
    let cfg = match Config::from_cli(cli, &|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            log.error(&e.to_string());
            return EXIT_CONFIG;
        }
    };
    let now = cfg
        .now
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
    let src = real_sources(&cfg, Instant::now());
    run_with(&cfg, &src, now, &log)
}
